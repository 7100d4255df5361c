"""The rollout app's models, one module per concept. Everything is re-exported here, so
``from rollout.models import Environment`` works and the app label, migrations and permission
codenames do not depend on which module a model lives in."""

from .audit import AuditEntry
from .controls import PercentRequest
from .deployments import BuildChange, WorkerDeployment
from .environments import (
    ConfigChange,
    DesiredConfig,
    Environment,
    Phase,
    RolloutPlan,
    Service,
)
from .people import CompanyAccount, Preferences, ServiceAccount
from .phases import CheckIn, PhaseAttestation, PhaseRun, Rollout
from .preflight import Preflight, PreflightAttestation
from .preview import PreviewCheck, PreviewRun
from .signoff import Decision, PostMortem, Signature

__all__ = [
    "AuditEntry",
    "BuildChange",
    "CheckIn",
    "ConfigChange",
    "Decision",
    "DesiredConfig",
    "Environment",
    "PercentRequest",
    "Phase",
    "PhaseAttestation",
    "PhaseRun",
    "Preflight",
    "PreflightAttestation",
    "CompanyAccount",
    "Preferences",
    "PostMortem",
    "Rollout",
    "RolloutPlan",
    "Service",
    "ServiceAccount",
    "Signature",
    "PreviewCheck",
    "PreviewRun",
    "WorkerDeployment",
]
