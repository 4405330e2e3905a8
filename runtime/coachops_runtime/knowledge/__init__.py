"""Knowledge: documents a program's coach retrieves from.

Uploads (``endpoints``) and the operator's spec sources land in ``knowledge_documents``;
the worker's ``KnowledgePoller`` (``ingest``) parses, chunks, embeds and upserts them
into the program's Chroma collection; ``retrieval`` queries it.
"""
