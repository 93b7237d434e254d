"""The function side of Lambda response streaming, standard library only: what a handler returns to stream
(response.py) and the Runtime API loop that sends it (loop.py, started by the ``wrapper`` script that
AWS_LAMBDA_EXEC_WRAPPER names on the managed Python runtime)."""
