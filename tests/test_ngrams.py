"""No-repeat n-gram blocking, shared by the torch and onnxruntime generation loops."""

from celltext.ngrams import banned_next_tokens


def test_the_token_that_would_repeat_an_ngram_is_banned():
    row = [5, 6, 7, 5, 6]
    assert banned_next_tokens(row, 3) == {7}  # "5 6 7" exists; "5 6" is the current prefix
    assert banned_next_tokens(row, 2) == {7}  # bigrams after 6: "6 7"
    assert banned_next_tokens(row, 1) == {5, 6, 7}  # no token twice
    assert banned_next_tokens(row, 0) == set()
    assert banned_next_tokens([1, 2], 3) == set()  # shorter than n
