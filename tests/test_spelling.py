"""The speller (celltext.spelling) corrects words the bank never uses, only those."""

from celltext.spelling import Speller, english_words

BANK = [
    "What is gradient descent?", "Gradient descent is an optimisation algorithm.",
    "What is backpropagation?", "What is a neural network?", "What does LSTM stand for?",
    "The gradient of a function.",
]  # fmt: skip


def test_corrects_one_edit_to_a_bank_word():
    sp = Speller(BANK, dictionary=frozenset())
    assert sp.correct("so gradiant descent") == "so gradient descent"
    assert sp.correct("explain backprpogation") == "explain backprpogation"  # two edits
    assert sp.correct("what is a nueral netwrok") == "what is a neural network"


def test_keeps_short_words_acronyms_code_and_known_words():
    sp = Speller(BANK, dictionary=frozenset())
    for text in ("wat is LSTM", "torch.nn.Linear", "Gradiant", "descent", "xyzzyq"):
        assert sp.correct(text) == text


def test_most_frequent_neighbour_wins():
    sp = Speller(["costs costs costs", "coats"], dictionary=frozenset())
    assert sp.word("costz") == "costs"


def test_an_english_word_the_bank_lacks_is_not_a_typo():
    bank = ["What is latitude?", "Latitude is the angular distance north or south."]
    sp = Speller(bank, dictionary=frozenset({"platitude", "grip"}))
    assert sp.correct("what is a platitude") == "what is a platitude"  # not "latitude"
    assert sp.word("grips") == "grips"  # an inflection of a dictionary word
    assert Speller(bank, dictionary=frozenset()).word("platitude") == "latitude"


def test_the_dictionary_is_wordnets_lemmas():
    words = english_words()
    assert len(words) > 70_000
    assert {"platitude", "bless", "gradient"} <= words and "gradiant" not in words
