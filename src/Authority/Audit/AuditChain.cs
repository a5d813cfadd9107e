using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using SecureChannels.Authority.Storage;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Authority.Audit;

/// <summary>What to record in the audit log; <see cref="AuditChain.SealAsync"/> turns it into a chained, signed record.</summary>
/// <param name="At">When it happened; kept to the millisecond (finer parts are dropped), in UTC.</param>
/// <param name="Actor">The identity that asked (identifier text).</param>
/// <param name="Principal">The principal concerned (text form, may be empty).</param>
/// <param name="Action">What happened: enroll, issue, refresh, delegate, revoke, ticket, policy.</param>
/// <param name="Target">What it happened to (a credential id, a subject, a resource).</param>
/// <param name="Reason">Why, as given (may be empty).</param>
public sealed record AuditDraft(DateTimeOffset At, string Actor, string Principal, string Action, string Target, string Reason);

/// <summary>
/// The tamper-evident audit log: every record is hashed over its canonical encoding, which includes the previous
/// record's hash, and the hash is signed by the authority. Changing, removing, inserting or reordering any record
/// breaks the chain at that record. Removing records from the end cannot be seen from the log alone: it needs a
/// head (sequence and hash) kept elsewhere, which is why verification returns one to print and accepts one to check.
/// </summary>
/// <remarks>
/// Encoding (canonical MessagePack, what is hashed):
/// <c>[version = 1, sequence: uint, at_unix_ms: uint, actor: str, principal: str, action: str, target: str, reason: str, previous_hash: bin 32]</c>.
/// The hash is SHA-256 of that encoding; the signature is Ed25519 over the hash under the domain
/// <see cref="SignatureDomain.AuditRecord"/>.
/// </remarks>
public static class AuditChain
{
    /// <summary>Bytes of a record hash (SHA-256) and so of a previous hash.</summary>
    public const int HashLength = 32;

    /// <summary>How many records <see cref="ReadAllAsync"/> and the transaction overload of <see cref="VerifyAsync(IAuthorityTransaction, VerifiedIdentity, AuditHead?, int, CancellationToken)"/> read per page unless told otherwise.</summary>
    public const int DefaultPageSize = 512;

    private const ulong CurrentVersion = 1;

    /// <summary>The canonical encoding of a record's content; its SHA-256 is the record's hash.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sequence"/> is below 1, or <paramref name="at"/> is before 1970.</exception>
    /// <exception cref="ArgumentException">A text is not well-formed UTF-16 (a lone surrogate), or <paramref name="previousHash"/> is not 32 bytes.</exception>
    public static byte[] Encode(long sequence, DateTimeOffset at, string actor, string principal, string action, string target, string reason, byte[] previousHash)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sequence, 1);
        ArgumentNullException.ThrowIfNull(previousHash);
        var milliseconds = at.ToUnixTimeMilliseconds();
        ArgumentOutOfRangeException.ThrowIfNegative(milliseconds, nameof(at));
        if (previousHash.Length != HashLength)
        {
            throw new ArgumentException($"A previous hash is {HashLength} bytes.", nameof(previousHash));
        }

        RequireText(actor, nameof(actor));
        RequireText(principal, nameof(principal));
        RequireText(action, nameof(action));
        RequireText(target, nameof(target));
        RequireText(reason, nameof(reason));

        var writer = new CanonicalWriter();
        writer.WriteArray(9);
        writer.WriteUnsigned(CurrentVersion);
        writer.WriteUnsigned((ulong)sequence);
        writer.WriteUnsigned((ulong)milliseconds);
        writer.WriteText(actor);
        writer.WriteText(principal);
        writer.WriteText(action);
        writer.WriteText(target);
        writer.WriteText(reason);
        writer.WriteBytes(previousHash);
        return writer.ToArray();
    }

    /// <summary>
    /// Seals <paramref name="draft"/> as the record after <paramref name="previous"/> (the first record when it
    /// is null): sequence one past it, linked to its hash, hashed, and signed by <paramref name="authority"/>'s
    /// current key. Nothing is stored; see <see cref="AppendAsync"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The draft is dated before 1970.</exception>
    /// <exception cref="ArgumentException">A text of the draft is not well-formed UTF-16, or <paramref name="previous"/>'s hash is not 32 bytes.</exception>
    public static async Task<AuditRecord> SealAsync(AuditRecord? previous, AuditDraft draft, AgentIdentity authority, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(draft);
        ArgumentNullException.ThrowIfNull(authority);
        var sequence = previous is null ? 1 : checked(previous.Sequence + 1);
        var previousHash = previous is null ? new byte[HashLength] : previous.Hash.ToArray();

        // The stored time must be exactly the hashed time, or a store that keeps milliseconds would hand back a
        // record whose time no longer matches what the caller saw; UTC so an export never depends on an offset.
        var at = DateTimeOffset.FromUnixTimeMilliseconds(draft.At.ToUnixTimeMilliseconds());
        var hash = SHA256.HashData(Encode(sequence, at, draft.Actor, draft.Principal, draft.Action, draft.Target, draft.Reason, previousHash));
        var signature = await SignatureDomain.SignAsync(authority.Signer, SignatureDomain.AuditRecord, hash, cancellationToken).ConfigureAwait(false);
        return new AuditRecord(sequence, at, draft.Actor, draft.Principal, draft.Action, draft.Target, draft.Reason, previousHash, hash, signature);
    }

    /// <summary>
    /// Seals <paramref name="draft"/> after the last record of <paramref name="transaction"/> and appends it. Call it
    /// inside the write transaction that makes the change being recorded, so the change and its record commit together
    /// and the store's single writer gives the chain exactly one next record.
    /// </summary>
    /// <returns>The appended record.</returns>
    public static async Task<AuditRecord> AppendAsync(IAuthorityTransaction transaction, AuditDraft draft, AgentIdentity authority, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        var last = await transaction.LastAuditAsync(cancellationToken).ConfigureAwait(false);
        var record = await SealAsync(last, draft, authority, cancellationToken).ConfigureAwait(false);
        await transaction.AppendAuditAsync(record, cancellationToken).ConfigureAwait(false);
        return record;
    }

    /// <summary>
    /// Walks <paramref name="records"/> (the log in order, from sequence 1) and stops at the first record that
    /// breaks the chain: sequences 1, 2, 3… without gap or reorder, each previous hash equal to the hash of the
    /// record before (32 zero bytes for the first), each hash equal to the recomputed one, each signature valid
    /// under a key of <paramref name="authority"/>'s history.
    /// </summary>
    /// <param name="records">The log, in order, from sequence 1.</param>
    /// <param name="authority">The authority's verified history (current, so records signed by every key it has used verify).</param>
    /// <param name="expectedLast">
    /// A head taken earlier and kept apart from the log (printed by a previous verification, exported, written down).
    /// Records cut from the end leave a shorter log that is perfectly chained, so only a head kept elsewhere shows
    /// the cut: the log must reach this sequence, and the record there must have this hash.
    /// </param>
    public static AuditVerification Verify(IEnumerable<AuditRecord> records, VerifiedIdentity authority, AuditHead? expectedLast = null)
    {
        ArgumentNullException.ThrowIfNull(records);
        var walker = new AuditChainWalker(authority, expectedLast);
        foreach (var record in records)
        {
            if (!walker.Accept(record))
            {
                break;
            }
        }

        return walker.Complete();
    }

    /// <summary>Like <see cref="Verify"/>, for a log read as it goes (an exported file, see <see cref="AuditJson.ReadAsync"/>); stops reading at the first bad record.</summary>
    /// <exception cref="AuditFormatException">The source could not be read as records (thrown by the source).</exception>
    public static async Task<AuditVerification> VerifyAsync(IAsyncEnumerable<AuditRecord> records, VerifiedIdentity authority, AuditHead? expectedLast = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        var walker = new AuditChainWalker(authority, expectedLast);
        await foreach (var record in records.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            if (!walker.Accept(record))
            {
                break;
            }
        }

        return walker.Complete();
    }

    /// <summary>Like <see cref="Verify"/>, for the log of a store, read <paramref name="pageSize"/> records at a time so a long log is never in memory at once.</summary>
    /// <exception cref="AuthorityStoreException">The store failed.</exception>
    public static Task<AuditVerification> VerifyAsync(IAuthorityTransaction transaction, VerifiedIdentity authority, AuditHead? expectedLast = null, int pageSize = DefaultPageSize, CancellationToken cancellationToken = default) =>
        VerifyAsync(ReadAllAsync(transaction, pageSize, cancellationToken), authority, expectedLast, cancellationToken);

    /// <summary>Every record of the store's log in sequence order, read <paramref name="pageSize"/> at a time.</summary>
    /// <exception cref="AuthorityStoreException">The store failed.</exception>
    /// <exception cref="InvalidOperationException">The store returned a page that does not move forward (it would be read forever).</exception>
    public static async IAsyncEnumerable<AuditRecord> ReadAllAsync(IAuthorityTransaction transaction, int pageSize = DefaultPageSize, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        var from = 1L;
        while (true)
        {
            var page = await transaction.ReadAuditAsync(from, pageSize, cancellationToken).ConfigureAwait(false);
            if (page.Count == 0)
            {
                yield break;
            }

            // The next page starts after the highest sequence seen, not after the page's last element: a damaged
            // store could return a page out of order, and the walk over it must still end.
            var highest = from - 1;
            foreach (var record in page)
            {
                highest = Math.Max(highest, record.Sequence);
                yield return record;
            }

            if (highest < from)
            {
                throw new InvalidOperationException($"The store returned audit records below sequence {from} when asked for those from it.");
            }

            if (highest == long.MaxValue)
            {
                yield break;
            }

            from = highest + 1;
        }
    }

    /// <summary>True when <paramref name="text"/> has no lone surrogate, so it has exactly one UTF-8 encoding.</summary>
    internal static bool IsWellFormed(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return false;
            }
        }

        return true;
    }

    private static void RequireText(string text, string name)
    {
        ArgumentNullException.ThrowIfNull(text, name);

        // The UTF-8 encoder replaces a lone surrogate with U+FFFD, so two different texts would hash alike and one
        // could be swapped for the other without breaking the chain. Refuse them instead.
        if (!IsWellFormed(text))
        {
            throw new ArgumentException("The text is not well-formed UTF-16 (it has a lone surrogate).", name);
        }
    }
}
