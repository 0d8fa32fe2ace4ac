"""The Workflow Orchestration Lab's own code: settings, the `./lab` CLI, process supervision and helpers.

The course's flows live in `flows/`, not here.
"""

__version__ = "0.1.0"
