"""The exact K-Means engine behind :class:`skvq.VectorQuantizer`.

``kmeans`` fits and assigns, ``stream`` keeps the state of ``partial_fit``;
``_lloyd`` holds the compiled loops.
"""
