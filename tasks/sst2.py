"""SST-2 (GLUE): Stanford Sentiment Treebank sentences, negative vs positive; online through Hugging Face datasets."""

from bench.core.task import TaskMetadata
from tasks._hf_text import HFTextTask


class SST2(HFTextTask):
    metadata = TaskMetadata(
        name="sst2",
        description="SST-2 movie-review sentences, negative vs positive, 67k train; the labelled GLUE validation "
                    "split (872) is the test split (the official test labels are hidden)",
        modality="text",
        classes=("negative", "positive"),
        source="Socher et al. 2013, GLUE; Hugging Face stanfordnlp/sst2",
        license="unknown (research use)",
        label_prompts=("A negative movie review.", "A positive movie review."),
    )
    hub_id = "stanfordnlp/sst2"
    text_field = "sentence"
    test_split = "validation"
