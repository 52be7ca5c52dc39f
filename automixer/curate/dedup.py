"""MinHash near-dedup at bounded memory, and per-domain or global dedup scope.

Wiring (drop-in for datatrove's stages 1 and 3; stages 2 and 4 stay datatrove's own):

    sig = ScopedMinhashSignature(sigs_dir, config, language=SplitWordTokenizer(), scope=cur.minhash_scope)
    buckets = MinhashDedupBuckets(sigs_dir, buckets_dir, config=config)         # num_buckets tasks
    cluster = BoundedMinhashCluster(buckets_dir, remove_dir, config=config)    # 1 task
    MinhashDedupFilter(remove_dir)                                             # reads the same `.remove` files

Scope: `scope="global"` is datatrove's behaviour. `scope="domain"` mixes a per-domain salt (taken from
`doc.metadata[domain_key]`) into every shingle hash, so two documents of different domains share no shingle
and never fall in the same LSH bucket, while Jaccard within a domain is unchanged (XOR with a constant is a
bijection). One set of stages and folders serves every domain.

Memory: datatrove's `MinhashDedupCluster` keeps one Python dict entry (tuple key, tuple value, size entry)
per document that has a duplicate (measured: ~220 bytes of RSS each, `bench/dedup.py`). `BoundedMinhashCluster`
streams the `.dups` pair files twice in chunks of `chunk_pairs` and keeps, per document that has a duplicate,
one uint64 key and one int32 parent (12 bytes; ~20 bytes traced at the peak of the sorted key merge, ~40
bytes of RSS measured), plus O(`chunk_pairs`) temporaries (a few MB at the default). Memory is therefore
linear in the number of documents that have a duplicate, at about a fifth of datatrove's slope; it does not
depend on the number of pairs, and nothing is kept per pair. The clusters are the connected components of the pair graph, exactly as in
datatrove; in each cluster the document with the smallest (file, doc index) is kept (datatrove keeps the
root its union-by-size order happens to pick), and a cluster that matched an index is removed entirely.
With `save_size_histogram=True` the stage also writes `cluster_sizes.json` ({documents in a cluster: number of
such clusters}, sizes >= 2, index entries not counted) to its output folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import SENTINEL, MinhashConfig, MinhashDedupSignature
from datatrove.utils.typeshelper import Languages

from automixer.io import stable_hash

_SENTINEL_KEY = np.uint64((SENTINEL << 32) | SENTINEL)


def domain_salt(domain: str) -> int:
    """The 64-bit salt mixed into the shingle hashes of a domain's documents under `scope="domain"`."""
    return int(stable_hash("minhash-scope", domain), 16)


class ScopedMinhashSignature(MinhashDedupSignature):
    """Datatrove's MinHash signature step; with `scope="domain"`, documents only collide within their domain."""

    def __init__(
        self,
        output_folder: DataFolderLike,
        config: MinhashConfig | None = None,
        language: Any = Languages.english,
        scope: str = "global",
        domain_key: str = "domain",
    ) -> None:
        if scope not in ("global", "domain"):
            raise ValueError(f"minhash scope must be 'global' or 'domain', got {scope!r}")
        super().__init__(output_folder, config, language=language)
        self.scope, self.domain_key = scope, domain_key
        self._salt = np.uint64(0)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> None:
        """Write the signatures of this task's documents, salting each by its domain when scoped."""

        def salted() -> DocumentsPipeline:
            for doc in data:
                if self.scope == "domain":
                    self._salt = np.uint64(domain_salt(str(doc.metadata.get(self.domain_key, ""))))
                yield doc

        super().run(salted(), rank, world_size)

    def get_shingles(self, text: str) -> np.ndarray:
        """Datatrove's hashed word n-grams, XOR-ed with the current document's domain salt."""
        shingles = super().get_shingles(text)
        return shingles ^ self._salt if self._salt else shingles


def _pair_chunks(folder: Any, files: list[str], chunk_pairs: int, ignore_index: bool) -> Iterator[np.ndarray]:
    """Duplicate pairs of the `.dups` files as (k, 2) uint64 node keys `file << 32 | doc`, chunk by chunk."""
    for name in files:
        with folder.open(name, "rb") as f:
            left = folder.size(name)
            while left > 0 and (buf := f.read(min(16 * chunk_pairs, left))):
                left -= len(buf)
                rows = np.frombuffer(buf, dtype="<u4").reshape(-1, 4)
                # (file, doc) as the low/high halves of a little-endian uint64: the key file << 32 | doc
                keys = np.ascontiguousarray(rows[:, [1, 0, 3, 2]]).view("<u8").astype(np.uint64, copy=False)
                if ignore_index:
                    keys = keys[keys[:, 0] != _SENTINEL_KEY]
                if len(keys):
                    yield keys


def _merge_sorted(keys: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Union of two sorted unique arrays, without sorting `keys` again."""
    pos = np.searchsorted(keys, new)
    present = pos < len(keys)
    present[present] = keys[pos[present]] == new[present]
    return np.insert(keys, pos[~present], new[~present])


def _node_keys(chunks: Iterator[np.ndarray], merge_at: int) -> np.ndarray:
    """Sorted unique node keys of all pairs; chunk uniques are merged in once they reach a quarter of the keys."""
    keys = np.empty(0, dtype=np.uint64)
    pending: list[np.ndarray] = []
    size = 0
    for pairs in chunks:
        pending.append(np.unique(pairs))
        size += len(pending[-1])
        if size >= max(merge_at, len(keys) // 4):
            keys, pending, size = _merge_sorted(keys, np.unique(np.concatenate(pending))), [], 0
    return _merge_sorted(keys, np.unique(np.concatenate(pending))) if pending else keys


def _find(parent: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Roots of `nodes` (pointer jumping until every pointer is a root)."""
    r = parent[nodes]
    while True:
        pr = parent[r]
        if np.array_equal(pr, r):
            return r
        r = pr


def _union(parent: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
    """Merge the trees of each edge (u, v); every merged group hangs on its smallest root."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ru, rv = _find(parent, u), _find(parent, v)
    cross = ru != rv
    if cross.any():
        roots, inv = np.unique(np.concatenate([ru[cross], rv[cross]]), return_inverse=True)
        m, k = len(roots), int(cross.sum())
        graph = coo_matrix((np.ones(k, dtype=np.int8), (inv[:k], inv[k:])), shape=(m, m))
        n_comp, label = connected_components(graph, directed=False)
        smallest = np.full(n_comp, m, dtype=np.int64)
        np.minimum.at(smallest, label, np.arange(m))  # `roots` is sorted: the first root of each group
        parent[roots] = roots[smallest[label]]
    parent[u], parent[v] = parent[ru], parent[rv]  # path compression for the nodes just seen


def _flatten(parent: np.ndarray) -> np.ndarray:
    """Every node's root."""
    root = parent
    while True:
        nxt = root[root]
        if np.array_equal(nxt, root):
            return root
        root = nxt


def cluster_roots(pairs: Iterator[np.ndarray], keys: np.ndarray) -> np.ndarray:
    """For each node key (sorted), the index of the smallest key in its connected component."""
    parent = np.arange(len(keys), dtype=np.int32 if len(keys) < 2**31 else np.int64)
    for chunk in pairs:
        idx = np.searchsorted(keys, chunk).astype(parent.dtype)
        _union(parent, idx[:, 0], idx[:, 1])
    return _flatten(parent)


class BoundedMinhashCluster(PipelineStep):
    """MinHash stage 3 over compact numpy arrays: datatrove's clusters and `.remove` files in bounded memory."""

    type = "🫂 - DEDUP"
    name = "🎯 MinHash stage 3 (bounded)"

    def __init__(
        self,
        input_folder: DataFolderLike,
        output_folder: DataFolderLike,
        config: MinhashConfig | None = None,
        save_cluster_id: bool = False,
        save_cluster_size: bool = False,
        ignore_index_matches: bool = False,
        chunk_pairs: int = 1 << 16,
        save_size_histogram: bool = False,
    ) -> None:
        super().__init__()
        self.input_folder = get_datafolder(input_folder)
        self.output_folder = get_datafolder(output_folder)
        self.config = config or MinhashConfig()
        self.save_cluster_id, self.save_cluster_size = save_cluster_id, save_cluster_size
        self.ignore_index_matches = ignore_index_matches
        self.chunk_pairs = chunk_pairs
        self.save_size_histogram = save_size_histogram

    def _pairs(self, files: list[str]) -> Iterator[np.ndarray]:
        return _pair_chunks(self.input_folder, files, self.chunk_pairs, self.ignore_index_matches)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> None:
        """Cluster the duplicate pairs of all buckets and write `<file>.remove` (and optional metadata)."""
        files = self.input_folder.list_files(glob_pattern="*.dups")
        if len(files) % self.config.num_buckets:
            raise ValueError(f"{len(files)} .dups files is not a multiple of {self.config.num_buckets} buckets")
        if world_size != 1:
            raise ValueError("MinHash clustering runs as a single task")
        with self.track_time():
            keys = _node_keys(self._pairs(files), self.chunk_pairs)
            root = cluster_roots(self._pairs(files), keys)
            remove = root != np.arange(len(keys), dtype=root.dtype)
            self.stat_update("clusters", value=len(keys) - int(np.count_nonzero(remove)))
            if len(keys) and keys[-1] == _SENTINEL_KEY:  # clusters matching the index go entirely
                remove |= root == root[-1]
                remove[-1] = False
            self.stat_update("duplicates", value=len(keys))
            self.stat_update("to_remove", value=int(np.count_nonzero(remove)))
            self._write(keys, root, remove)
            if self.save_size_histogram:
                self._write_histogram(keys, root)

    def _write(self, keys: np.ndarray, root: np.ndarray, remove: np.ndarray) -> None:
        """Per input file: the removed doc indices, and if asked (doc, cluster id) / (doc, size) pairs."""
        halves = keys.astype("<u8", copy=False).view("<u4").reshape(-1, 2)  # views: [:, 0] doc, [:, 1] file
        extra: dict[str, np.ndarray] = {}
        if self.save_cluster_id:  # datatrove numbers clusters by first appearance in sorted node order
            _, first, inv = np.unique(root, return_index=True, return_inverse=True)
            order = np.empty(len(first), dtype=np.int64)
            order[np.argsort(first)] = np.arange(len(first))
            extra["clusters"] = order[inv]
        if self.save_cluster_size:
            extra["sizes"] = np.bincount(root, minlength=len(keys))[root]
        lo = 0
        while lo < len(keys) and (f := int(halves[lo, 1])) != SENTINEL:  # keys are sorted: one run per file
            hi = int(np.searchsorted(keys, np.uint64((f + 1) << 32)))
            docs = halves[lo:hi, 0]
            self._put(f"{f:06d}.remove", docs[remove[lo:hi]])
            for ext, values in extra.items():
                self._put(f"{f:06d}.{ext}", np.stack([docs, values[lo:hi].astype("<u4")], axis=1))
            lo = hi

    def _write_histogram(self, keys: np.ndarray, root: np.ndarray) -> None:
        """`cluster_sizes.json`: {cluster size: number of clusters} over sizes >= 2, written via temp + rename."""
        real = root[:-1] if len(keys) and keys[-1] == _SENTINEL_KEY else root  # the index node is no document
        sizes = np.bincount(real, minlength=len(keys))
        values, counts = np.unique(sizes[sizes >= 2], return_counts=True)
        histogram = {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}
        tmp = ".cluster_sizes.json.tmp"
        with self.output_folder.open(tmp, "w") as out:
            out.write(json.dumps(histogram) + "\n")
        self.output_folder.mv(tmp, "cluster_sizes.json")

    def _put(self, name: str, array: np.ndarray) -> None:
        """Write little-endian uint32s to `name` in the output folder via a temp name + rename."""
        if not array.size:
            return
        tmp = f".{name}.tmp"
        with self.output_folder.open(tmp, "wb") as out:
            out.write(np.ascontiguousarray(array, dtype="<u4").tobytes())
        self.output_folder.mv(tmp, name)
