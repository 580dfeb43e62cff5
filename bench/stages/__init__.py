"""The stages of a run, each a module with explicit inputs and a returned result:
:mod:`~bench.stages.gather` (audio per model and prompt set), :mod:`~bench.stages.embed`
(embeddings into the content-addressed cache) and :mod:`~bench.stages.score` (one metric value
per cell). :mod:`bench.pipeline` runs them in order."""
