"""A third-party objective, registered from outside fairtune (imported by a recipe's `objective_modules`)."""

from __future__ import annotations

from fairtune.objectives import Objective, register_objective


@register_objective("toy_margin")
class ToyMargin(Objective):
    """Toy margin: squared distance of the positive-class probability from `margin` (a test objective)."""

    needs = ("probs", "groups")
    card_name = "Toy margin"
    citations = ("toy2026",)
    references = {
        "toy2026": {
            "short": "Toy (2026)",
            "reference": "A toy objective registered by fairtune's tests.",
            "bibtex": "@misc{toy2026, title = {A toy objective}}",
        }
    }

    def __init__(self, *, margin: float = 0.5, **context) -> None:
        super().__init__(**context)
        self.margin = float(margin)

    def __call__(self, batch):
        value = ((batch.probs[:, -1] - self.margin) ** 2).mean()
        return value, {"toy_margin": float(value.detach())}
