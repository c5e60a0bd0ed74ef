"""AG News (Zhang et al. 2015): news titles + descriptions in 4 topics; online through Hugging Face datasets."""

from bench.core.task import TaskMetadata
from tasks._hf_text import HFTextTask


class AGNews(HFTextTask):
    metadata = TaskMetadata(
        name="ag_news",
        description="AG News articles, 4 topics (World, Sports, Business, Sci/Tech), 120k train / 7.6k test",
        modality="text",
        classes=("World", "Sports", "Business", "Sci/Tech"),
        source="Zhang, Zhao, LeCun 2015; Hugging Face fancyzhx/ag_news",
        license="unknown (research use)",
        label_prompts=("A news article about world politics.", "A news article about sports.",
                       "A news article about business and the economy.",
                       "A news article about science and technology."),
    )
    hub_id = "fancyzhx/ag_news"
