"""Meta-evaluation: does a metric notice controlled degradations (``bench sensitivity``) and does it
agree with people (``bench agreement``)? See ``docs/meta_evaluation.md``."""
