// Package bundle packs a content store into the bundle that crosses the air gap, and checks and
// unpacks it on the other side (docs/spec/bundle-v1.md).
//
// A bundle is a tar stream compressed as zstd frames: bundle.json (the inventory, Inventory),
// bundle.json.asc (an OpenPGP detached signature over it), sbom.cdx.json (CycloneDX 1.6) and
// the store's OCI layout, blobs in digest order. Create and Write make one; Verify checks one in
// a single streaming pass without writing anything; Extract checks and writes it into a new
// directory, atomically; Inspect reads only the first two entries.
//
// Errors callers branch on:
//   - *IntegrityError: content that does not match the signed inventory, or breaks the format
//     (forbidden or unknown entries, order, sizes, truncation, trailing data);
//   - *SignatureError: missing, untrusted, expired or bad signature (wraps the internal/pgp
//     sentinel, or ErrUnsigned);
//   - *VersionError: a formatVersion this package does not read;
//   - ErrNotBundle: input that is not a zstd tar stream starting with bundle.json.
//
// The CLI maps *IntegrityError and *SignatureError to exit code 4.
//
// Reading is built for throughput with flat memory: the reader walks zstd frames itself and
// passes raw (incompressible) frames through without copying, reading a regular file through a
// memory map; blob contents are hashed by one worker per core, several blobs at a time, from a
// bounded set of buffers. Writers emit independent frames of 1 MiB, compressed in parallel, and
// store raw those that do not compress, so the output is the same on any number of cores.
package bundle
