"""AWS Lambda: the dispatcher (schedule -> one SQS message per account-region) and the worker."""
