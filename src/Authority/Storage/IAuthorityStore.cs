namespace SecureChannels.Authority.Storage;

/// <summary>
/// Where an authority keeps what it has granted and taken back. Every change of authority (enroll, issue,
/// delegate, revoke, publish a policy) happens inside one <see cref="IAuthorityTransaction"/>: all of it is
/// committed, or none of it. Write transactions are serialized across every process that shares the store,
/// so the revocation sequence, policy versions and the audit chain each have exactly one next value.
/// </summary>
/// <remarks>
/// What every implementation keeps the same: times are stored as UTC milliseconds, so a time comes back truncated to
/// the millisecond with offset zero; text is stored as UTF-8 and compared and ordered by code point (byte order), and
/// any well-formed string round-trips exactly, NUL and control characters included (a string with a lone surrogate
/// cannot be UTF-8 and is refused with <see cref="ArgumentException"/>); byte arrays are ordered bytewise.
/// </remarks>
public interface IAuthorityStore : IAsyncDisposable
{
    /// <summary>Creates the schema when it is missing; safe to call on every start and from several instances.</summary>
    /// <exception cref="AuthorityStoreException">The database is unreachable or refuses.</exception>
    Task InitializeAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Begins a transaction. A write transaction holds the store's single writer lock until it is committed or
    /// disposed (disposing without committing rolls everything back).
    /// </summary>
    /// <exception cref="AuthorityStoreException">The database is unreachable or refuses.</exception>
    Task<IAuthorityTransaction> BeginAsync(bool write, CancellationToken cancellationToken = default);
}

/// <summary>
/// One unit of work against an <see cref="IAuthorityStore"/>. Not thread-safe: one caller at a time. Every
/// failure of the database surfaces as <see cref="AuthorityStoreException"/>, never as a provider exception.
/// </summary>
/// <remarks>
/// The methods that change something (the inserts, <see cref="MarkTicketUsedAsync"/>, <see cref="AppendAuditAsync"/>)
/// need a transaction begun with <c>write: true</c>; on a read transaction they throw
/// <see cref="InvalidOperationException"/>, because a change outside the writer lock would break the serialization.
/// When a method throws <see cref="AuthorityStoreException"/> or <see cref="OperationCanceledException"/>, the
/// transaction has already been rolled back and its writer lock released: dispose it and begin again (every further
/// call throws <see cref="InvalidOperationException"/>, as after a commit). Cancellation is honoured until a commit
/// starts, never in the middle of one.
/// </remarks>
public interface IAuthorityTransaction : IAsyncDisposable
{
    /// <summary>Stores a new enrollment ticket.</summary>
    Task InsertTicketAsync(TicketRecord ticket, CancellationToken cancellationToken = default);

    /// <summary>The ticket with this id, or null.</summary>
    Task<TicketRecord?> FindTicketAsync(byte[] id, CancellationToken cancellationToken = default);

    /// <summary>Marks an unused ticket used; false when it was already used (or does not exist), so a ticket works once even under a race.</summary>
    Task<bool> MarkTicketUsedAsync(byte[] id, string usedBy, DateTimeOffset usedAt, CancellationToken cancellationToken = default);

    /// <summary>Records an issued or delegated credential. Its id is unique.</summary>
    Task InsertCredentialAsync(CredentialRecord credential, CancellationToken cancellationToken = default);

    /// <summary>The credential with this id, or null.</summary>
    Task<CredentialRecord?> FindCredentialAsync(byte[] id, CancellationToken cancellationToken = default);

    /// <summary>The credentials whose parent is <paramref name="parentId"/> (one level), ordered by id.</summary>
    Task<IReadOnlyList<CredentialRecord>> FindChildrenAsync(byte[] parentId, CancellationToken cancellationToken = default);

    /// <summary>Credentials on behalf of <paramref name="principal"/> valid at <paramref name="at"/> (not_before ≤ at &lt; not_after), ordered by id.</summary>
    Task<IReadOnlyList<CredentialRecord>> FindByPrincipalAsync(string principal, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>Credentials whose subject is <paramref name="subject"/> (an identifier's text form), ordered by id.</summary>
    Task<IReadOnlyList<CredentialRecord>> FindBySubjectAsync(string subject, CancellationToken cancellationToken = default);

    /// <summary>The newest stored document of <paramref name="kind"/>/<paramref name="resource"/>, or null.</summary>
    Task<StoredDocument?> LatestDocumentAsync(string kind, string resource, CancellationToken cancellationToken = default);

    /// <summary>The newest document of every resource of <paramref name="kind"/>, ordered by resource.</summary>
    Task<IReadOnlyList<StoredDocument>> LatestDocumentsAsync(string kind, CancellationToken cancellationToken = default);

    /// <summary>Stores a document version. (kind, resource, version) is unique: a version is never written twice.</summary>
    Task InsertDocumentAsync(StoredDocument document, CancellationToken cancellationToken = default);

    /// <summary>The last audit record, or null when the log is empty.</summary>
    Task<AuditRecord?> LastAuditAsync(CancellationToken cancellationToken = default);

    /// <summary>Appends an audit record; its sequence must be the last one's plus one (the first is 1).</summary>
    /// <exception cref="AuthorityStoreException">With <see cref="AuthorityStoreErrorKind.Conflict"/> when the sequence is not the last one's plus one.</exception>
    Task AppendAuditAsync(AuditRecord record, CancellationToken cancellationToken = default);

    /// <summary>Up to <paramref name="limit"/> audit records with sequence ≥ <paramref name="fromSequence"/>, in sequence order.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is negative.</exception>
    Task<IReadOnlyList<AuditRecord>> ReadAuditAsync(long fromSequence, int limit, CancellationToken cancellationToken = default);

    /// <summary>Makes every change of this transaction durable at once.</summary>
    Task CommitAsync(CancellationToken cancellationToken = default);
}

/// <summary>A one-time enrollment ticket. Only the SHA-256 of its secret is stored; the secret itself never is.</summary>
/// <param name="Id">16 random bytes, the ticket's public handle (the first part of the ticket text).</param>
/// <param name="SecretHash">SHA-256 of the 32-byte secret.</param>
/// <param name="Principal">The principal the enrolled identity will act for (text form).</param>
/// <param name="Attributes">The canonical encoding of the attribute set it will receive.</param>
/// <param name="MaxDelegationDepth">How many hops the issued credential may delegate.</param>
/// <param name="CredentialLifetimeSeconds">How long the issued credential lives.</param>
/// <param name="ExpiresAt">After this the ticket is refused.</param>
/// <param name="CreatedBy">Who created it (identifier text).</param>
/// <param name="CreatedAt">When.</param>
/// <param name="UsedBy">The identity that enrolled with it, or null while unused.</param>
/// <param name="UsedAt">When it was used, or null.</param>
public sealed record TicketRecord(
    byte[] Id,
    byte[] SecretHash,
    string Principal,
    byte[] Attributes,
    int MaxDelegationDepth,
    long CredentialLifetimeSeconds,
    DateTimeOffset ExpiresAt,
    string CreatedBy,
    DateTimeOffset CreatedAt,
    string? UsedBy,
    DateTimeOffset? UsedAt);

/// <summary>A credential the authority issued, or a delegation registered with it.</summary>
/// <param name="Id">The credential id (16 bytes).</param>
/// <param name="ParentId">The parent credential's id for a delegation; null for a root credential.</param>
/// <param name="Issuer">Issuer identifier (text form).</param>
/// <param name="Subject">Subject identifier (text form).</param>
/// <param name="Principal">Principal (text form).</param>
/// <param name="Attributes">Canonical encoding of the attribute set.</param>
/// <param name="NotBefore">Start of validity (whole seconds).</param>
/// <param name="NotAfter">End of validity (whole seconds).</param>
/// <param name="Chain">The full credential chain's encoding, as presented.</param>
/// <param name="RecordedAt">When it was recorded.</param>
public sealed record CredentialRecord(
    byte[] Id,
    byte[]? ParentId,
    string Issuer,
    string Subject,
    string Principal,
    byte[] Attributes,
    DateTimeOffset NotBefore,
    DateTimeOffset NotAfter,
    byte[] Chain,
    DateTimeOffset RecordedAt);

/// <summary>A signed, versioned document the authority publishes: a revocation list (kind "revocations", resource "") or a policy (kind "policy", resource its name).</summary>
public sealed record StoredDocument(string Kind, string Resource, long Version, byte[] Encoded, DateTimeOffset PublishedAt);

/// <summary>
/// One entry of the tamper-evident audit log: who did what, for whom, why, when; hash-chained to the previous
/// entry and signed by the authority.
/// </summary>
/// <param name="Sequence">1, 2, 3, … without gaps.</param>
/// <param name="At">When (millisecond precision).</param>
/// <param name="Actor">The identity that asked (identifier text).</param>
/// <param name="Principal">The principal concerned (text form, may be empty).</param>
/// <param name="Action">What happened: enroll, issue, refresh, delegate, revoke, ticket, policy.</param>
/// <param name="Target">What it happened to (a credential id, a subject, a resource).</param>
/// <param name="Reason">Why, as given (may be empty).</param>
/// <param name="PreviousHash">The previous record's hash (32 zero bytes for the first).</param>
/// <param name="Hash">SHA-256 over this record's canonical encoding, which includes <paramref name="PreviousHash"/>.</param>
/// <param name="Signature">The authority's signature over <paramref name="Hash"/>.</param>
public sealed record AuditRecord(
    long Sequence,
    DateTimeOffset At,
    string Actor,
    string Principal,
    string Action,
    string Target,
    string Reason,
    byte[] PreviousHash,
    byte[] Hash,
    byte[] Signature);

/// <summary>What went wrong in the store.</summary>
public enum AuthorityStoreErrorKind
{
    /// <summary>The database cannot be reached (connection refused, timed out, closed).</summary>
    Unavailable,

    /// <summary>A write broke a uniqueness rule (an id or version written twice).</summary>
    Conflict,

    /// <summary>The database refused for another reason; the transaction was rolled back.</summary>
    Failed,
}

/// <summary>A store failure. The message names the operation, never a secret or a connection string's password.</summary>
public sealed class AuthorityStoreException : Exception
{
    /// <summary>Creates the exception.</summary>
    public AuthorityStoreException(AuthorityStoreErrorKind kind, string message, Exception? inner = null)
        : base(message, inner) => Kind = kind;

    /// <summary>What went wrong; <see cref="AuthorityStoreErrorKind.Unavailable"/> is worth a retry with back-off.</summary>
    public AuthorityStoreErrorKind Kind { get; }
}
