"""The speller (celltext.spelling) corrects words the bank never uses, only those."""

from celltext.spelling import Speller

BANK = [
    "What is gradient descent?", "Gradient descent is an optimisation algorithm.",
    "What is backpropagation?", "What is a neural network?", "What does LSTM stand for?",
    "The gradient of a function.",
]  # fmt: skip


def test_corrects_one_edit_to_a_bank_word():
    sp = Speller(BANK)
    assert sp.correct("so gradiant descent") == "so gradient descent"
    assert sp.correct("explain backprpogation") == "explain backprpogation"  # two edits
    assert sp.correct("what is a nueral netwrok") == "what is a neural network"


def test_keeps_short_words_acronyms_code_and_known_words():
    sp = Speller(BANK)
    for text in ("wat is LSTM", "torch.nn.Linear", "Gradiant", "descent", "xyzzyq"):
        assert sp.correct(text) == text


def test_most_frequent_neighbour_wins():
    sp = Speller(["costs costs costs", "coats"])
    assert sp.word("costz") == "costs"
