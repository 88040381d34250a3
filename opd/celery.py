import os

from celery import Celery, signals

from opd.core import observability

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opd.settings.base")

app = Celery("opd")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The request id travels in a message header and is put back around the task's run; the run time, failures
# and retries are counted; the worker's log lines take OPD_LOG_FORMAT (opd.core.observability).
signals.before_task_publish.connect(observability.task_publishing, weak=False)
signals.task_prerun.connect(observability.task_starting, weak=False)
signals.task_postrun.connect(observability.task_finished, weak=False)
signals.task_failure.connect(observability.task_failed, weak=False)
signals.task_retry.connect(observability.task_retried, weak=False)
signals.worker_ready.connect(observability.start_worker_exporter, weak=False)
signals.after_setup_logger.connect(observability.use_json_in_celery, weak=False)
signals.after_setup_task_logger.connect(observability.use_json_in_celery, weak=False)
