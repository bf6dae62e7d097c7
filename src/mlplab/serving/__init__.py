"""Serving a run's model over HTTP: ``mlplab serve RUN`` / ``mlplab.serve(run)``.

``predictor`` answers requests as dicts, ``requests`` reads them, ``http`` is the server and
``page`` the page it shows in a browser.
"""

from mlplab.serving.http import PredictionServer, make_server, serve

__all__ = ["PredictionServer", "make_server", "serve"]
