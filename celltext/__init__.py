"""celltext: a compact text-to-text system built around a 3D cellular neural network.

A frozen teacher sentence encoder embeds a question (Module 1), a small core network maps
it to an answer embedding (Module 2), a tiny generative decoder writes the answer text
(Module 3), and a production wrapper checks quality and falls back to retrieval.
"""

__version__ = "0.1.0"
