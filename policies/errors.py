"""Typed errors of the policy runtime. Kept free of heavy imports: robots load this side."""


class PolicyError(Exception):
    """A policy file or a policy's output that must not be used; the message says why."""


class PolicyLoadError(PolicyError):
    """The model file is missing, unreadable, or does not fit the task's spaces."""


class PolicyOutputError(PolicyError):
    """The policy produced a non-finite or mis-shaped action; it must not be applied."""
