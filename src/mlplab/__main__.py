from mlplab.cli import run

run()
