"""Reference BERT-uncased tokenisation: a port of google-research/bert tokenization.py
(BasicTokenizer with do_lower_case=True, then greedy longest-match-first WordpieceTokenizer,
max 100 characters per word), standard library only. Reads a vocab path as argv[1] and a JSON
list of texts on stdin; prints a JSON list of id lists, each wrapped in [CLS] ... [SEP]."""
import json
import sys
import unicodedata


def is_whitespace(c):
    return c in ' \t\n\r' or unicodedata.category(c) == 'Zs'


def is_control(c):
    if c in '\t\n\r':
        return False
    return unicodedata.category(c) in ('Cc', 'Cf')


def is_punctuation(c):
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith('P')


def is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic_tokenize(text):
    text = ''.join(' ' if is_whitespace(c) else c for c in text
                   if not (ord(c) == 0 or ord(c) == 0xFFFD or is_control(c)))
    text = ''.join(' %s ' % c if is_cjk(ord(c)) else c for c in text)
    words = []
    for token in text.split():
        token = unicodedata.normalize('NFD', token.lower())
        token = ''.join(c for c in token if unicodedata.category(c) != 'Mn')
        current = []
        for c in token:
            if is_punctuation(c):
                if current:
                    words.append(''.join(current))
                    current = []
                words.append(c)
            else:
                current.append(c)
        if current:
            words.append(''.join(current))
    return words


def wordpiece(word, vocab):
    if len(word) > 100:
        return ['[UNK]']
    pieces, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            piece = word[start:end] if start == 0 else '##' + word[start:end]
            if piece in vocab:
                found = piece
                break
            end -= 1
        if found is None:
            return ['[UNK]']
        pieces.append(found)
        start = end
    return pieces


def main():
    vocab = {}
    with open(sys.argv[1], encoding='utf-8') as f:
        for i, line in enumerate(f):
            vocab[line.rstrip('\n')] = i
    texts = json.load(sys.stdin)
    out = []
    for text in texts:
        ids = [vocab[p] for w in basic_tokenize(text) for p in wordpiece(w, vocab)]
        out.append([vocab['[CLS]']] + ids + [vocab['[SEP]']])
    json.dump(out, sys.stdout)


main()
