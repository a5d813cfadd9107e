using System.Security.Cryptography;
using SecureChannels.Authority.Storage;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Authority.Audit;

/// <summary>
/// The verification of <see cref="AuditChain.Verify"/>, fed one record at a time so a log can be checked while it
/// is read (pages of a store, lines of a file) and never held whole.
/// </summary>
internal sealed class AuditChainWalker
{
    private readonly byte[][] _keys;
    private readonly AuditHead? _expectedLast;
    private byte[] _previousHash = new byte[AuditChain.HashLength];
    private long _expected = 1;
    private AuditHead? _head;

    // A record whose sequence jumps ahead: a gap, unless the record after it goes back down (then the log is out
    // of order). One record of look-ahead tells an adjacent swap from a removal without holding more of the log.
    private AuditRecord? _jumped;
    private AuditVerification? _failure;

    public AuditChainWalker(VerifiedIdentity authority, AuditHead? expectedLast)
    {
        ArgumentNullException.ThrowIfNull(authority);

        // Any key of the history is accepted, newest first (most records are signed by the current key).
        // AuditRecord names no change hash, so a record cannot say which key signed it; and the log must keep
        // verifying after a rotation, since old records are never re-signed. The cost: a key retired because it
        // leaked can still sign records that verify. Such forgeries must still fit the hash chain, so they can
        // only replace the log from some record to its end, which a head kept elsewhere (expectedLast) exposes.
        _keys = [.. authority.History.Changes.Reverse().Select(static c => c.Change.PublicKey)];
        _expectedLast = expectedLast;
    }

    /// <summary>Checks the next record; false once the walk has failed (feed no more).</summary>
    public bool Accept(AuditRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (_failure is not null)
        {
            return false;
        }

        if (_jumped is not null)
        {
            Fail(
                record.Sequence < _jumped.Sequence ? AuditFailureKind.Reordered : AuditFailureKind.SequenceGap,
                record.Sequence < _jumped.Sequence
                    ? $"Record {_expected} is expected next, but record {_jumped.Sequence} comes before record {record.Sequence}: the log is out of order."
                    : Missing());
            return false;
        }

        if (record.Sequence > _expected)
        {
            _jumped = record;
            return true;
        }

        if (record.Sequence < _expected)
        {
            Fail(AuditFailureKind.Reordered, $"Record {_expected} is expected next, but record {record.Sequence} comes: the log is out of order or repeats a record.");
            return false;
        }

        return Check(record);
    }

    /// <summary>The outcome, once every record was fed (or <see cref="Accept"/> returned false).</summary>
    public AuditVerification Complete()
    {
        if (_failure is not null)
        {
            return _failure;
        }

        if (_jumped is not null)
        {
            Fail(AuditFailureKind.SequenceGap, Missing());
            return _failure!;
        }

        if (_expectedLast is not null && _expected <= _expectedLast.Sequence)
        {
            Fail(AuditFailureKind.Truncated, $"The log ends at record {_expected - 1}, but the expected head is record {_expectedLast.Sequence}: records were removed from its end.");
            return _failure!;
        }

        return new AuditVerification(true, _expected - 1, null, null, null) { Head = _head };
    }

    private bool Check(AuditRecord record)
    {
        var sequence = record.Sequence;
        if (record.PreviousHash is null || !CryptographicOperations.FixedTimeEquals(record.PreviousHash, _previousHash))
        {
            Fail(AuditFailureKind.BrokenLink, sequence == 1
                ? "Record 1 has a previous hash; the first record's is 32 zero bytes."
                : $"Record {sequence} does not link to the hash of record {sequence - 1}.");
            return false;
        }

        var hash = Hash(record);
        if (hash is null)
        {
            Fail(AuditFailureKind.Malformed, $"Record {sequence} has a time before 1970, a missing text or a text with a lone surrogate; no sealed record has.");
            return false;
        }

        if (record.Hash is null || !CryptographicOperations.FixedTimeEquals(hash, record.Hash))
        {
            Fail(AuditFailureKind.HashMismatch, $"Record {sequence} does not hash to its stored hash: it was changed after it was sealed.");
            return false;
        }

        if (!IsSigned(hash, record.Signature))
        {
            Fail(AuditFailureKind.BadSignature, $"Record {sequence} is not signed by any key of the authority's history.");
            return false;
        }

        if (_expectedLast is not null && sequence == _expectedLast.Sequence && !CryptographicOperations.FixedTimeEquals(hash, _expectedLast.Hash))
        {
            Fail(AuditFailureKind.HeadMismatch, $"Record {sequence} is not the expected head: the log was rewritten up to it and re-signed.");
            return false;
        }

        _previousHash = hash;
        _head = new AuditHead(sequence, hash);
        _expected++;
        return true;
    }

    private static byte[]? Hash(AuditRecord record)
    {
        // Only the record's own values are unencodable here (sequence and link were checked already); the
        // exceptions of Encode are how it says so, and a verification reports rather than throws.
        try
        {
            return SHA256.HashData(AuditChain.Encode(record.Sequence, record.At, record.Actor, record.Principal, record.Action, record.Target, record.Reason, record.PreviousHash));
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private bool IsSigned(byte[] hash, byte[]? signature)
    {
        if (signature is null)
        {
            return false;
        }

        foreach (var key in _keys)
        {
            if (SignatureDomain.Verify(key, SignatureDomain.AuditRecord, hash, signature))
            {
                return true;
            }
        }

        return false;
    }

    private string Missing() => _expected == 1
        ? $"Record 1 is missing: the log starts at record {_jumped!.Sequence}."
        : $"Record {_expected} is missing: record {_jumped!.Sequence} follows record {_expected - 1}.";

    private void Fail(AuditFailureKind kind, string detail) =>
        _failure = new AuditVerification(false, _expected - 1, _expected, kind, detail) { Head = _head };
}
