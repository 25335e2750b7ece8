"""Training data: sources, records, tokenization, packing, mixing, the self-generated corpus, the datamodule.

The public names are exported lazily (:mod:`eu.exports`); the other modules are imported by path.
"""

from eu.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "UnlearningDataModule": "eu.data.datamodule",
        "StreamConfig": "eu.data.datamodule",
        "SampleSettings": "eu.data.sampler",
        "sample_corpus": "eu.data.sampler",
        "resolve_source": "eu.data.sources",
        "read_records": "eu.data.records",
        "PreferenceRecord": "eu.data.records",
        "Fields": "eu.data.records",
    },
)
