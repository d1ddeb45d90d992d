"""Batchline's one change to Spiff's BPMN parser: service tasks never call out from
inside Spiff. A ``BatchlineServiceTask`` stays STARTED until the job executor completes
it outside the batch's transaction (never HTTP inside a DB transaction)."""

from __future__ import annotations

from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser
from SpiffWorkflow.spiff.specs.defaults import ServiceTask


class BatchlineServiceTask(ServiceTask):
    """A service task that waits: Spiff leaves it STARTED and the job executor
    calls the connector, then completes the task (never HTTP inside a DB transaction)."""

    def _execute(self, task):
        return None


class BatchlineParser(SpiffBpmnParser):
    """Spiff's parser (spiff extensions) with Batchline's service task."""

    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (ServiceTaskParser, BatchlineServiceTask),
    }
