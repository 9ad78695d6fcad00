"""AWS Lambda: the dispatcher (schedule -> one SQS message per account-region) and the worker."""

# The SQS message attribute that carries a dispatch's request id to the worker, which logs
# under it: one scheduled run, one correlation id.
RUN_ID_ATTRIBUTE = "run_id"
