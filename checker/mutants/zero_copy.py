"""Mutants of lesson 16's fetch: each brings back one way a download goes wrong."""
from . import Mutant

MUTANTS = []
STUDENT = []


def mutants_for(lesson: str) -> list[Mutant]:
    return MUTANTS + STUDENT
