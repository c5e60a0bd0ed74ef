"""IMDB (Maas et al. 2011): 25k/25k full movie reviews, negative vs positive; online through Hugging Face datasets."""

from bench.core.task import TaskMetadata
from tasks._hf_text import HFTextTask


class IMDB(HFTextTask):
    metadata = TaskMetadata(
        name="imdb",
        description="IMDB movie reviews, negative vs positive, 25k train / 25k test",
        modality="text",
        classes=("negative", "positive"),
        source="Maas et al. 2011 (ACL); Hugging Face stanfordnlp/imdb",
        license="unknown (research use)",
        label_prompts=("A negative movie review.", "A positive movie review."),
    )
    hub_id = "stanfordnlp/imdb"
