/**
 * A table's checksum in the export manifest: the sum, mod 2^64, of a 64-bit hash of every COPY
 * line (Postgres's `hashtextextended`, summed per page by the query that builds the page, see
 * pageQuery), as 16 hex digits. Equal sets of lines give equal sums whatever their order or page
 * boundaries, so an export of the restored database can be compared with the original; it detects
 * accidental differences, it is not a cryptographic digest. Hashing in Postgres, in C, costs a
 * fraction of what hashing every character in JavaScript cost the Worker.
 */
export class TableChecksum {
  private sum = 0n;

  /** Adds a page's sum of line hashes (a decimal integer, possibly negative). */
  add(pageSum: string): void {
    this.sum = BigInt.asUintN(64, this.sum + BigInt(pageSum));
  }

  hex(): string {
    return this.sum.toString(16).padStart(16, "0");
  }
}
