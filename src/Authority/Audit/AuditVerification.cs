using System.Globalization;
using System.Security.Cryptography;

namespace SecureChannels.Authority.Audit;

/// <summary>Why an audit log does not verify. Each kind names the first check that failed, at the first bad record.</summary>
public enum AuditFailureKind
{
    /// <summary>A sequence number is missing: a record was removed (or the log does not start at 1).</summary>
    SequenceGap = 1,

    /// <summary>A record appears out of order: two records were swapped, moved, or one was duplicated.</summary>
    Reordered,

    /// <summary>A record's previous hash is not the hash of the record before it (the first record's is not 32 zero bytes).</summary>
    BrokenLink,

    /// <summary>A record's content no longer hashes to its stored hash: a field was changed after sealing.</summary>
    HashMismatch,

    /// <summary>A record's signature over its hash is not valid under any key of the authority's history.</summary>
    BadSignature,

    /// <summary>A record has a value no sealed record can have (text that is not well-formed UTF-16, a time before 1970), so its encoding cannot be recomputed.</summary>
    Malformed,

    /// <summary>The log ends before the expected head's sequence: records were removed from its end.</summary>
    Truncated,

    /// <summary>
    /// The record at the expected head's sequence has another hash: the log was rewritten from some point on
    /// and re-signed (which takes the authority's key), or the head was taken from another log.
    /// </summary>
    HeadMismatch,
}

/// <summary>
/// A position in an audit log: the sequence and hash of a record. Since every hash covers the previous one, a
/// head pins the whole log up to it. Its text form is <c>sequence:hash-hex</c>.
/// </summary>
public sealed record AuditHead
{
    /// <summary>Creates a head.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sequence"/> is below 1.</exception>
    /// <exception cref="ArgumentException"><paramref name="hash"/> is not 32 bytes.</exception>
    public AuditHead(long sequence, ReadOnlySpan<byte> hash)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sequence, 1);
        if (hash.Length != AuditChain.HashLength)
        {
            throw new ArgumentException($"An audit hash is {AuditChain.HashLength} bytes.", nameof(hash));
        }

        Sequence = sequence;
        Hash = hash.ToArray();
    }

    /// <summary>The record's sequence.</summary>
    public long Sequence { get; }

    /// <summary>The record's hash (32 bytes).</summary>
    public byte[] Hash { get; }

    /// <summary>Parses the text form <c>sequence:hash-hex</c>.</summary>
    /// <exception cref="FormatException">The text is not a head.</exception>
    public static AuditHead Parse(string text) =>
        TryParse(text, out var head) ? head : throw new FormatException("An audit head is written as sequence:hash, the hash as 64 hex digits.");

    /// <summary>Parses the text form <c>sequence:hash-hex</c>; false when <paramref name="text"/> is not one.</summary>
    public static bool TryParse(string? text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out AuditHead? head)
    {
        head = null;
        var colon = text?.IndexOf(':', StringComparison.Ordinal) ?? -1;
        if (text is null || colon <= 0 || text.Length - colon - 1 != AuditChain.HashLength * 2)
        {
            return false;
        }

        // Digits only: NumberStyles.None refuses signs, spaces and separators, so one head has one spelling.
        if (!long.TryParse(text.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var sequence) || sequence < 1)
        {
            return false;
        }

        var hash = new byte[AuditChain.HashLength];
        if (Convert.FromHexString(text.AsSpan(colon + 1), hash, out _, out var written) != System.Buffers.OperationStatus.Done || written != hash.Length)
        {
            return false;
        }

        head = new AuditHead(sequence, hash);
        return true;
    }

    /// <summary>The text form <c>sequence:hash-hex</c>, lowercase hex.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Sequence}:{Convert.ToHexStringLower(Hash)}");

    /// <inheritdoc />
    public bool Equals(AuditHead? other) =>
        other is not null && Sequence == other.Sequence && CryptographicOperations.FixedTimeEquals(Hash, other.Hash);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Sequence, BitConverter.ToInt32(Hash));
}

/// <summary>
/// The outcome of walking an audit log. When it is not intact, every record before
/// <see cref="FirstBadSequence"/> verified; nothing from there on can be trusted.
/// </summary>
/// <param name="IsIntact">True when every record verified (and the expected head, when one was given, was found).</param>
/// <param name="RecordsChecked">How many records verified, from sequence 1 on.</param>
/// <param name="FirstBadSequence">The sequence at which the log stops verifying (the sequence the walk expected there); null when intact.</param>
/// <param name="Failure">The first check that failed; null when intact.</param>
/// <param name="Detail">A sentence for an operator; null when intact. It names sequences and checks, never record content.</param>
public sealed record AuditVerification(bool IsIntact, long RecordsChecked, long? FirstBadSequence, AuditFailureKind? Failure, string? Detail)
{
    /// <summary>
    /// The last record that verified (for an intact log, its end), or null when none did. Print it: it is what a
    /// later verification needs to detect that records were cut from the end (see <see cref="AuditChain.Verify"/>).
    /// </summary>
    public AuditHead? Head { get; init; }
}
