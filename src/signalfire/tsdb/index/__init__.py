"""A block's index: postings, matchers over postings, and the index file."""

from signalfire.tsdb.index.index_file import IndexReader, write_index
from signalfire.tsdb.index.postings import MemPostings, PostingsIndex, select_postings, union_sorted

__all__ = ["IndexReader", "MemPostings", "PostingsIndex", "select_postings", "union_sorted", "write_index"]
