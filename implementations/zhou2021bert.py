r"""MetaDistil: BERT Learns to Teach (Zhou, Xu & McAuley, ACL 2022; arXiv 2021 as "Meta Learning for
Knowledge Distillation").

Paper: https://arxiv.org/abs/2106.04570 (ACL: https://aclanthology.org/2022.acl-long.485)
Code:  https://github.com/JetRunner/MetaDistil (the authors'; cv/helper/meta_loops.py and
       cv/train_student_meta.py for CIFAR-100, nlp/run_glue_distillation_meta.py for GLUE)
Id:    zhou2021bert

Idea: the teacher is not frozen. It keeps learning during distillation, from the student's feedback:
a *pilot* copy of the student takes one distillation step, the pilot is scored on a held-out *quiz*
batch, and the quiz loss, differentiated through the pilot step (second order), updates the teacher,
so the teacher learns to produce targets after which the student generalises better. Then the real
student takes the same step with the updated teacher.

One iteration on a training batch (x, y) and a quiz batch (x_q, y_q) (the order of the authors' code,
train_distill in meta_loops.py; the paper's Algorithm 1 could not be read, see the YAML):
  1. pilot update, differentiable in theta_T (create_graph=True):
         theta_S' = theta_S - eta * grad_{theta_S} L_KD(x, y; theta_S, theta_T),
     a plain SGD step of size eta on a functional copy of the student (the real student is untouched);
  2. teacher update from the quiz loss alone:
         theta_T <- theta_T - mu * grad_{theta_T} CE(y_q, S(x_q; theta_S'(theta_T))),
     with the teacher's own optimiser; the teacher gets *no* task loss of its own (neither the CV nor
     the NLP code adds one);
  3. real student update on the same batch with the *updated* teacher (teacher outputs without
     gradient), with the student's own optimiser.
L_KD = (1 - alpha) CE(y, S(x)) + alpha T^2 KL(p_T^T || p_S^T) (the code's loss: alpha weights KD,
1 - alpha the labels; KL summed over classes, averaged over the batch, CustomDistillKL).

Details that follow the authors' CV code:
- The teacher runs in eval mode in the pilot step and in step 3 (``t_model.eval()``): its BatchNorm
  uses running statistics, which never change; its gradient flows through the eval-mode forward.
- The pilot's and the quiz's student forwards run in training mode, and the student's BatchNorm
  running statistics are then restored (the code reloads its state_dict backup, "time machine"): only
  step 3 moves them. Here the functional forwards get copies of the buffers instead.
- The pilot step size eta equals the student's learning rate (the code decays assume_s_step_size
  with the student's schedule); plain SGD, no momentum or weight decay, in the pilot.
- One training batch per teacher update (num_meta_batches = 1, the default).
Defaults: alpha = 0.9 and T = 4 (RepDistiller's KD command, which the CV code builds on; the code's
kd_T default is 4 and its alpha has no default). Where the recipe starts the meta-updates and the
teacher's learning rate: see kdatlas.recipes.zhou2021bert.
Quiz set in the code: the CV code holds out the end of the training set; the NLP code reads a
held.tsv file per GLUE task whose construction is not in the repository (a comment at that line says
the dev set is used "for simplicity"). This file takes any quiz batch; the recipe uses labelled data
the student never trains on.
Left out: the NLP losses (MSE on softened probabilities, the PKD feature term), several training
batches per teacher update, gradient clipping of the teacher (NLP code).
Depends only on torch (torch.func.functional_call).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

__all__ = ["kd_loss", "pilot_update", "quiz_loss", "teacher_meta_grads", "student_loss", "metadistil_step"]


def kd_loss(z: Tensor, v: Tensor, targets: Tensor, alpha: float = 0.9, temperature: float = 4.0) -> dict[str, Tensor]:
    """{"ce": (1 - alpha) CE(y, z), "kd": alpha T^2 KL(softmax(v/T) || softmax(z/T))}; z student, v teacher.

    The teacher logits ``v`` are used as given: the pilot step differentiates through them."""
    log_p_s = F.log_softmax(z / temperature, dim=-1)
    log_p_t = F.log_softmax(v / temperature, dim=-1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    return {"ce": (1 - alpha) * F.cross_entropy(z, targets), "kd": alpha * temperature ** 2 * kl}


def _state(model: nn.Module, params: dict[str, Tensor]) -> dict[str, Tensor]:
    """``params`` plus *copies* of the model's buffers: a training-mode functional forward then leaves
    the model's BatchNorm running statistics as they were."""
    return {**params, **{k: b.clone() for k, b in model.named_buffers()}}


def pilot_update(student: nn.Module, teacher: nn.Module, x: Tensor, y: Tensor, step_size: float,
                 alpha: float = 0.9, temperature: float = 4.0) -> dict[str, Tensor]:
    """theta_S' = theta_S - eta grad L_KD(x, y; theta_S, theta_T), as a graph in theta_T and theta_S.

    Returns the pilot's parameters by name; ``student`` itself is not modified."""
    params = dict(student.named_parameters())
    z = functional_call(student, _state(student, params), (x,))
    out = kd_loss(z, teacher(x), y, alpha, temperature)
    grads = torch.autograd.grad(out["ce"] + out["kd"], list(params.values()), create_graph=True)
    return {k: p - step_size * g for (k, p), g in zip(params.items(), grads)}


def quiz_loss(student: nn.Module, pilot: dict[str, Tensor], x_q: Tensor, y_q: Tensor) -> Tensor:
    """CE(y_q, S(x_q; theta_S')): the pilot student's loss on the quiz batch (training-mode forward)."""
    return F.cross_entropy(functional_call(student, _state(student, pilot), (x_q,)), y_q)


def teacher_meta_grads(student: nn.Module, teacher: nn.Module, x: Tensor, y: Tensor, x_q: Tensor, y_q: Tensor,
                       step_size: float, alpha: float = 0.9, temperature: float = 4.0) -> tuple[list, Tensor]:
    """(grad_{theta_T} of the quiz loss through the pilot step, one per teacher parameter; the quiz loss)."""
    pilot = pilot_update(student, teacher, x, y, step_size, alpha, temperature)
    q = quiz_loss(student, pilot, x_q, y_q)
    return list(torch.autograd.grad(q, list(teacher.parameters()))), q.detach()


def student_loss(student: nn.Module, teacher: nn.Module, x: Tensor, y: Tensor, alpha: float = 0.9,
                 temperature: float = 4.0) -> dict[str, Tensor]:
    """The real step's L_KD (step 3): the teacher's outputs without gradient, so it never trains it."""
    with torch.no_grad():
        v = teacher(x)
    return kd_loss(student(x), v, y, alpha, temperature)


def metadistil_step(student: nn.Module, teacher: nn.Module, s_opt: torch.optim.Optimizer,
                    t_opt: torch.optim.Optimizer | None, x: Tensor, y: Tensor, x_q: Tensor | None = None,
                    y_q: Tensor | None = None, step_size: float = 0.05, alpha: float = 0.9,
                    temperature: float = 4.0) -> dict[str, Tensor]:
    """One MetaDistil iteration: pilot step, teacher update on the quiz batch, real student step.

    ``t_opt=None``: no teacher update (plain KD with the current teacher). The teacher is kept in eval
    mode. Returns the real step's detached terms, and "quiz" (the pilot's quiz loss) when the teacher
    was updated."""
    teacher.eval()
    terms = {}
    if t_opt is not None:
        grads, q = teacher_meta_grads(student, teacher, x, y, x_q, y_q, step_size, alpha, temperature)
        t_opt.zero_grad(set_to_none=True)
        for p, g in zip(teacher.parameters(), grads):
            p.grad = g
        t_opt.step()
        t_opt.zero_grad(set_to_none=True)
        terms["quiz"] = q
    out = student_loss(student, teacher, x, y, alpha, temperature)  # with the updated teacher
    s_opt.zero_grad(set_to_none=True)
    (out["ce"] + out["kd"]).backward()
    s_opt.step()
    return {**{k: t.detach() for k, t in out.items()}, **terms}


if __name__ == "__main__":
    torch.manual_seed(0)
    s_net = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 5))
    t_net = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 5))
    so, to = torch.optim.SGD(s_net.parameters(), lr=0.05), torch.optim.SGD(t_net.parameters(), lr=0.05)
    xb, yb, xq, yq = torch.randn(32, 6), torch.randint(0, 5, (32,)), torch.randn(32, 6), torch.randint(0, 5, (32,))
    for it in range(3):
        print(it, {k: round(v.item(), 4) for k, v in metadistil_step(s_net, t_net, so, to, xb, yb, xq, yq).items()})
