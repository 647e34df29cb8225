"""One router per resource: answers, embeddings, models, feedback, health, web page."""
