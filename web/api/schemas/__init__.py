"""The API's request and response bodies as marshmallow schemas (they also write the
OpenAPI document), one module per concern. Request schemas refuse unknown fields
(marshmallow's default), so a misspelt field is an error instead of silently ignored data.
"""

from __future__ import annotations

from .batches import (  # noqa: F401
    STATES,
    Batch,
    BatchFilter,
    BatchStart,
    CorrectionIn,
    CorrectionOut,
    CorrectionResult,
    Credentials,
    Diagram,
    ExceptionOut,
    IdempotencyKey,
    MyTask,
    OpenedTask,
    Reassign,
    Reassigned,
    ServiceResult,
    ServiceResultOutcome,
    SignatureOut,
    Step,
    StepResult,
    Task,
    TaskCompletion,
    TaskQuery,
)
from .operations import (  # noqa: F401
    AuditAnchors,
    AuditCheck,
    AuditSignatures,
    AuditVerifyQuery,
    EventPage,
    Events,
    Health,
    Incident,
    IncidentFilter,
    IncidentRetried,
    Ready,
)
from .people import (  # noqa: F401
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
)
from .quality import (  # noqa: F401, E402
    DispositionIn,
    ExceptionFilter,
    ReleaseCheck,
    ReleaseIn,
    ReleaseOut,
    RuleApprove,
    RuleSetIn,
    RuleSetOut,
)
from .quality import ReviewedException as QualityExceptionOut  # noqa: F401, E402
from .recipes import (  # noqa: F401
    Problem,
    Reason,
    Recipe,
    RecipeCheck,
    RecipeCheckResult,
    RecipeDetail,
    RecipeImport,
    RecipeUpload,
    RecipeUploadCheck,
    RecipeUploadOptions,
)
