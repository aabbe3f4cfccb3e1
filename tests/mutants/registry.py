"""Every variant by name: the mutants of each area, in the kill table's order, and the negative controls."""

from __future__ import annotations

from . import (
    auth,
    between,
    errors,
    forms,
    headers,
    properties,
    response_shape,
    semantics,
    streaming,
    strict_json,
    validation,
)
from .controls import CONTROLS
from .core import Mutant
from .features import FEATURELESS

__all__ = ["CONTROLS", "MUTANTS", "variant"]


def _merged(*areas: dict[str, Mutant]) -> dict[str, Mutant]:
    """The areas' mutants in one dict, in order; a name used twice is an error, not a silent overwrite."""
    out: dict[str, Mutant] = {}
    for area in areas:
        for name, mutant in area.items():
            if name in out or name in CONTROLS:
                raise ValueError(f"variant name {name!r} is used twice")
            out[name] = mutant
    return out


MUTANTS: dict[str, Mutant] = _merged(auth.MUTANTS, headers.MUTANTS, validation.MUTANTS, forms.MUTANTS,
                                     errors.MUTANTS, response_shape.MUTANTS, strict_json.MUTANTS, semantics.MUTANTS,
                                     streaming.MUTANTS, between.MUTANTS, properties.MUTANTS)


def variant(name: str) -> Mutant:
    """A mutant, a negative control or a server without a feature (features.FEATURELESS), by name."""
    return MUTANTS.get(name) or CONTROLS.get(name) or FEATURELESS[name]
