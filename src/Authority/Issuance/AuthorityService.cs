using System.Collections.Immutable;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using SecureChannels.Authority.Audit;
using SecureChannels.Authority.Storage;
using SecureChannels.Authority.Telemetry;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Policy;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Authority.Issuance;

/// <summary>
/// What the authority does, independent of how it is reached: tickets, enrollment, refresh, the delegation
/// registry, revocation and policy publication. Every change is one store transaction that also appends the
/// signed audit record, so a crash between steps leaves nothing half done. Requests are authorized here, per
/// request, from the caller's verified identity and credentials. Thread-safe.
/// </summary>
public sealed partial class AuthorityService
{
    /// <summary>The document kind of revocation lists in the store.</summary>
    public const string RevocationsKind = "revocations";

    /// <summary>The document kind of policies in the store.</summary>
    public const string PolicyKind = "policy";

    private readonly IAuthorityStore _store;
    private readonly AuthorityOptions _options;

    // When the revocation list was last found full: the earliest time one of its entries can be dropped (UTC ticks).
    private long _revocationsPrunableAtTicks;
    private readonly TimeProvider _time;
    private readonly AuthorityMetrics _metrics;
    private readonly ILogger _logger;
    private readonly EnrollmentGate _gate;
    private readonly PolicyBook _policies = new();

    /// <summary>Creates the service over <paramref name="store"/>.</summary>
    public AuthorityService(AgentIdentity identity, IAuthorityStore store, AuthorityOptions options, TimeProvider time, AuthorityMetrics metrics, ILogger<AuthorityService> logger)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        Identity = identity;
        _store = store;
        _options = options;
        _time = time;
        _metrics = metrics;
        _logger = logger;
        _gate = new EnrollmentGate(options.EnrollmentRate, options.EnrollmentBurst, time);
        Anchors = new TrustAnchors().Trust(identity.Verified);
        Revocations = new RevocationRegistry();
        Verifier = new CredentialVerifier(Anchors, Revocations, time);
    }

    /// <summary>The authority's identity.</summary>
    public AgentIdentity Identity { get; }

    /// <summary>The authority itself, as the only trust anchor of its own verifier.</summary>
    public TrustAnchors Anchors { get; }

    /// <summary>The authority's own newest revocation list: its channels honour it like everyone else's.</summary>
    public RevocationRegistry Revocations { get; }

    /// <summary>Verifies credentials presented to the authority (roles, refreshes, registered delegations).</summary>
    public CredentialVerifier Verifier { get; }

    /// <summary>The newest signed revocation list, or null before the first revocation.</summary>
    public SignedRevocationList? CurrentRevocations => Revocations.Find(Identity.Identifier);

    /// <summary>The newest signed policy document per resource.</summary>
    public IEnumerable<SignedPolicyDocument> CurrentPolicies => _policies.Documents;

    /// <summary>Raised after a newer revocation list was published (here or, seen in the store, by another instance).</summary>
    public event Action<SignedRevocationList>? RevocationsPublished;

    /// <summary>Raised after a newer policy document was published.</summary>
    public event Action<SignedPolicyDocument>? PolicyPublished;

    /// <summary>Creates the schema if needed and loads what was published.</summary>
    /// <exception cref="AuthorityException"><see cref="AuthorityErrorCode.Unavailable"/> when the store cannot be reached.</exception>
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        await Store(() => _store.InitializeAsync(cancellationToken)).ConfigureAwait(false);
        await ResignAfterRotationAsync(cancellationToken).ConfigureAwait(false);
        await LoadPublishedAsync(cancellationToken).ConfigureAwait(false);
    }

    // Lists and policies are accepted only under the authority's current key (§6, §10.4). After the authority rotated,
    // the newest of each is re-published under the new key as the next version, once, in one transaction; a stored
    // document no key of the authority's history signed is left alone (and refused by every subscriber).
    private Task<bool> ResignAfterRotationAsync(CancellationToken cancellationToken) =>
        WriteAsync(async tx =>
        {
            var current = Identity.Verified.Current.ChangeHash;
            var now = Now();
            if (await tx.LatestDocumentAsync(RevocationsKind, string.Empty, cancellationToken).ConfigureAwait(false) is { } stored
                && SignedRevocationList.Decode(stored.Encoded) is var list
                && !list.IssuerChangeHash.AsSpan().SequenceEqual(current)
                && SignedByHistory(list.IssuerChangeHash, SignatureDomain.RevocationList, list.List.Encoded, list.Signature))
            {
                var next = new RevocationList(Identity.Identifier, list.List.Sequence + 1, now, list.List.Entries);
                var signed = await SignedRevocationList.SignAsync(next, Identity, cancellationToken).ConfigureAwait(false);
                await tx.InsertDocumentAsync(new StoredDocument(RevocationsKind, string.Empty, (long)next.Sequence, signed.Encode(), now), cancellationToken).ConfigureAwait(false);
                await AuditAsync(tx, Caller.Operator(Identity.Identifier), string.Empty, "resign", $"revocation list {next.Sequence}", "the authority's key was rotated", cancellationToken).ConfigureAwait(false);
            }

            foreach (var document in await tx.LatestDocumentsAsync(PolicyKind, cancellationToken).ConfigureAwait(false))
            {
                var policy = SignedPolicyDocument.Decode(document.Encoded);
                if (!policy.IssuerChangeHash.AsSpan().SequenceEqual(current)
                    && SignedByHistory(policy.IssuerChangeHash, SignatureDomain.PolicyDocument, policy.Document.Encoded, policy.Signature))
                {
                    var next = new PolicyDocument(Identity.Identifier, policy.Document.Resource, policy.Document.Version + 1, now, policy.Document.Policy.Text);
                    var signed = await SignedPolicyDocument.SignAsync(next, Identity, cancellationToken).ConfigureAwait(false);
                    await tx.InsertDocumentAsync(new StoredDocument(PolicyKind, next.Resource, (long)next.Version, signed.Encode(), now), cancellationToken).ConfigureAwait(false);
                    await AuditAsync(tx, Caller.Operator(Identity.Identifier), string.Empty, "resign", $"policy {next.Resource} {next.Version}", "the authority's key was rotated", cancellationToken).ConfigureAwait(false);
                }
            }

            return true;
        }, cancellationToken);

    private bool SignedByHistory(byte[] changeHash, string domain, byte[] body, byte[] signature) =>
        Identity.Verified.FindChange(changeHash)?.PublicKey is { } key && SignatureDomain.Verify(key, domain, body, signature);

    /// <summary>
    /// Reads the newest revocation list and policies from the store and applies any newer than held: how an
    /// instance learns what another instance (or the CLI) published.
    /// </summary>
    public async Task LoadPublishedAsync(CancellationToken cancellationToken = default)
    {
        var (revocations, policies) = await Store(async () =>
        {
            await using var tx = await _store.BeginAsync(write: false, cancellationToken).ConfigureAwait(false);
            var list = await tx.LatestDocumentAsync(RevocationsKind, string.Empty, cancellationToken).ConfigureAwait(false);
            var documents = await tx.LatestDocumentsAsync(PolicyKind, cancellationToken).ConfigureAwait(false);
            return (list, documents);
        }).ConfigureAwait(false);

        if (revocations is not null)
        {
            Apply(SignedRevocationList.Decode(revocations.Encoded));
        }

        foreach (var document in policies)
        {
            Apply(SignedPolicyDocument.Decode(document.Encoded));
        }
    }

    /// <summary>Creates a one-time enrollment ticket. Only the secret's hash is stored.</summary>
    /// <exception cref="AuthorityException">Unauthorized, out of range, or the store is unavailable.</exception>
    public async Task<IssuedTicket> CreateTicketAsync(Caller caller, TicketRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(request);
        var authority = Identity.Identifier;
        if (!caller.Has(authority, AuthorityRoles.Enroller))
        {
            throw Refuse(AuthorityErrorCode.Unauthorized, "Creating tickets needs the enroller or admin role.");
        }

        if (request.Attributes.Entries.ContainsKey(Caller.RoleAttribute) && !caller.Has(authority, AuthorityRoles.Admin))
        {
            throw Refuse(AuthorityErrorCode.Unauthorized, $"Only an admin may grant '{Caller.RoleAttribute}'.");
        }

        var ticketLifetime = request.TicketLifetime == TimeSpan.Zero ? _options.TicketLifetime : request.TicketLifetime;
        var credentialLifetime = request.CredentialLifetime == TimeSpan.Zero ? _options.CredentialLifetime : request.CredentialLifetime;
        if (ticketLifetime > _options.MaxTicketLifetime || credentialLifetime > _options.MaxCredentialLifetime || credentialLifetime < AuthorityOptions.MinCredentialLifetime)
        {
            throw Refuse(AuthorityErrorCode.OutOfRange, $"Tickets live at most {_options.MaxTicketLifetime}; credentials {AuthorityOptions.MinCredentialLifetime} to {_options.MaxCredentialLifetime}.");
        }

        var now = Now();
        var ticket = EnrollmentTicket.Create(authority);
        var record = new TicketRecord(
            ticket.Id, ticket.SecretHash(), request.Principal.ToString(), request.Attributes.Encode(), request.MaxDelegationDepth,
            (long)credentialLifetime.TotalSeconds, now + ticketLifetime, caller.ToString(), now, null, null);
        await WriteAsync(async tx =>
        {
            await tx.InsertTicketAsync(record, cancellationToken).ConfigureAwait(false);
            await AuditAsync(tx, caller, request.Principal.ToString(), "ticket", ticket.IdText, $"attributes {request.Attributes}; expires {record.ExpiresAt:O}", cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
        _metrics.TicketCreated();
        return new IssuedTicket(ticket, DateTimeOffset.FromUnixTimeSeconds(record.ExpiresAt.ToUnixTimeSeconds()));
    }

    /// <summary>
    /// Enrolls <paramref name="caller"/> (the identity proven by its channel) with a ticket: the ticket is
    /// marked used, the credential issued and recorded, and the audit record appended, all in one transaction.
    /// </summary>
    /// <exception cref="AuthorityException">RateLimited, TicketForeign, TicketUnknown, TicketUsed, TicketExpired, CredentialRevoked, Unavailable.</exception>
    public async Task<CredentialChain> EnrollAsync(Caller caller, EnrollmentTicket ticket, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(ticket);

        // The cheap refusals first: no hashing and no database work for a flood or a ticket from elsewhere.
        if (!_gate.TryEnter())
        {
            _metrics.Enrollment("rate_limited");
            throw Refuse(AuthorityErrorCode.RateLimited, "Too many enrollments right now; retry after a back-off.");
        }

        if (!ticket.IsFrom(Identity.Identifier))
        {
            _metrics.Enrollment("foreign");
            throw Refuse(AuthorityErrorCode.TicketForeign, "The ticket was made by another authority.");
        }

        var presentedHash = ticket.SecretHash();
        try
        {
            var chain = await WriteAsync(async tx =>
            {
                var record = await tx.FindTicketAsync(ticket.Id, cancellationToken).ConfigureAwait(false);

                // A wrong secret for a real id reads exactly like an unknown id: the id alone proves nothing.
                if (record is null || !CryptographicOperations.FixedTimeEquals(record.SecretHash, presentedHash))
                {
                    throw Refuse(AuthorityErrorCode.TicketUnknown, $"No such ticket ({ticket.IdText}).");
                }

                if (record.UsedBy is not null)
                {
                    throw Refuse(AuthorityErrorCode.TicketUsed, $"The ticket {ticket.IdText} was already used.");
                }

                var now = Now();
                if (now >= record.ExpiresAt)
                {
                    throw Refuse(AuthorityErrorCode.TicketExpired, $"The ticket {ticket.IdText} expired at {record.ExpiresAt:O}.");
                }

                if (!await tx.MarkTicketUsedAsync(ticket.Id, caller.ToString(), now, cancellationToken).ConfigureAwait(false))
                {
                    throw Refuse(AuthorityErrorCode.TicketUsed, $"The ticket {ticket.IdText} was already used.");
                }

                var principal = Principal.Parse(record.Principal);
                var attributes = AttributeSet.Decode(record.Attributes);
                var issued = await CredentialIssuer.IssueAsync(Identity, caller.Identifier, principal, attributes, now, now + TimeSpan.FromSeconds(record.CredentialLifetimeSeconds), record.MaxDelegationDepth, cancellationToken).ConfigureAwait(false);
                if (CurrentRevocations?.List.FindRevocation(issued.Leaf.Credential) is { } revoked)
                {
                    throw Refuse(AuthorityErrorCode.CredentialRevoked, $"The ticket would issue a revoked credential ({revoked}).");
                }

                await tx.InsertCredentialAsync(ToRecord(issued, now), cancellationToken).ConfigureAwait(false);
                await AuditAsync(tx, caller, record.Principal, "enroll", issued.Leaf.Credential.IdText, $"ticket {ticket.IdText}", cancellationToken).ConfigureAwait(false);
                return issued;
            }, cancellationToken).ConfigureAwait(false);
            _metrics.Enrollment("enrolled");
            _metrics.Issued("enroll");
            LogEnrolled(_logger, caller.Identifier, chain.Leaf.Credential.IdText, chain.Leaf.Credential.Principal);
            return chain;
        }
        catch (AuthorityException e)
        {
            _metrics.Enrollment(e.Code.ToString());
            throw;
        }
    }

    /// <summary>
    /// Issues a fresh credential replacing <paramref name="credentialId"/>, a root credential of this authority
    /// whose subject is the caller and which is neither revoked nor expired. The new one has the same
    /// principal, attributes, depth and lifetime, starting now.
    /// </summary>
    /// <exception cref="AuthorityException">CredentialUnknown, Unauthorized, CredentialRevoked, CredentialInvalid (expired), Unavailable.</exception>
    public async Task<CredentialChain> RefreshAsync(Caller caller, byte[] credentialId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(credentialId);
        var chain = await WriteAsync(async tx =>
        {
            var record = await tx.FindCredentialAsync(credentialId, cancellationToken).ConfigureAwait(false)
                ?? throw Refuse(AuthorityErrorCode.CredentialUnknown, $"No credential {Convert.ToHexStringLower(credentialId)} is registered here.");
            if (record.Subject != caller.ToString())
            {
                throw Refuse(AuthorityErrorCode.Unauthorized, "Only a credential's subject may refresh it.");
            }

            if (record.ParentId is not null)
            {
                throw Refuse(AuthorityErrorCode.Unauthorized, "A delegated credential is refreshed by its delegator, not by the authority.");
            }

            var old = CredentialChain.Decode(record.Chain).Leaf.Credential;

            // Only the newest generation refreshes: otherwise a credential revoked by id would come back through
            // a refresh of the one it replaced.
            var generations = await tx.FindBySubjectAsync(record.Subject, cancellationToken).ConfigureAwait(false);
            if (generations.Any(g => g.ParentId is null && g.Issuer == record.Issuer && g.Principal == record.Principal
                && g.Attributes.AsSpan().SequenceEqual(record.Attributes) && g.RecordedAt > record.RecordedAt))
            {
                throw Refuse(AuthorityErrorCode.CredentialInvalid, $"The credential {old.IdText} was replaced by a refresh; refresh the newest one.");
            }

            if (CurrentRevocations?.List.FindRevocation(old) is { } revoked)
            {
                throw Refuse(AuthorityErrorCode.CredentialRevoked, $"The credential {old.IdText} is revoked ({revoked}).");
            }

            var now = Now();
            if (now >= old.NotAfter)
            {
                throw Refuse(AuthorityErrorCode.CredentialInvalid, $"The credential {old.IdText} expired at {old.NotAfter:O}; enroll again.");
            }

            var issued = await CredentialIssuer.IssueAsync(Identity, old.Subject, old.Principal, old.Attributes, now, now + (old.NotAfter - old.NotBefore), old.MaxDelegationDepth, cancellationToken).ConfigureAwait(false);
            await tx.InsertCredentialAsync(ToRecord(issued, now), cancellationToken).ConfigureAwait(false);
            await AuditAsync(tx, caller, record.Principal, "refresh", issued.Leaf.Credential.IdText, $"replaces {old.IdText}", cancellationToken).ConfigureAwait(false);
            return issued;
        }, cancellationToken).ConfigureAwait(false);
        _metrics.Issued("refresh");
        return chain;
    }

    /// <summary>
    /// Records a delegation the caller made: the chain verifies under this authority, its leaf was issued by
    /// the caller, and its parent is registered here.
    /// </summary>
    /// <returns>The authority's receipt for the delegation, which the sub-agent's chain carries (verifiers may require it).</returns>
    /// <exception cref="AuthorityException">CredentialInvalid, Unauthorized, CredentialUnknown (parent), Unavailable.</exception>
    public async Task<SignedDelegationReceipt> RegisterDelegationAsync(Caller caller, CredentialChain chain, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(chain);
        try
        {
            Verifier.Verify(chain);
        }
        catch (CredentialException e)
        {
            throw Refuse(e.Kind == CredentialErrorKind.Revoked ? AuthorityErrorCode.CredentialRevoked : AuthorityErrorCode.CredentialInvalid, $"The delegation does not verify: {e.Message}");
        }

        var leaf = chain.Leaf.Credential;
        if (leaf.Parent is null || leaf.Issuer != caller.Identifier)
        {
            throw Refuse(AuthorityErrorCode.Unauthorized, "Only the delegator registers a delegation (the leaf's issuer), and a root credential is not a delegation.");
        }

        await WriteAsync(async tx =>
        {
            // Ids are chosen by delegators, so an id proves nothing by itself: what is registered is that exact signed
            // credential (its signed hash), below that exact parent.
            if (await tx.FindCredentialAsync(leaf.Id, cancellationToken).ConfigureAwait(false) is { } existing)
            {
                return SameSigned(existing, chain.Leaf)
                    ? true // Registered already: registering is idempotent.
                    : throw Refuse(AuthorityErrorCode.CredentialInvalid, $"Another credential with id {leaf.IdText} is registered; delegate again (ids are random).");
            }

            var parent = await tx.FindCredentialAsync(leaf.Parent.Id, cancellationToken).ConfigureAwait(false);
            if (parent is null || !SameSigned(parent, chain.Credentials[^2]))
            {
                throw Refuse(AuthorityErrorCode.CredentialUnknown, $"The parent {Convert.ToHexStringLower(leaf.Parent.Id)} is not registered; register it first.");
            }

            await tx.InsertCredentialAsync(ToRecord(chain, Now()), cancellationToken).ConfigureAwait(false);
            await AuditAsync(tx, caller, leaf.Principal.ToString(), "delegate", leaf.IdText, $"to {leaf.Subject} below {Convert.ToHexStringLower(leaf.Parent.Id)}", cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
        _metrics.Issued("delegation");
        return await SignedDelegationReceipt.SignAsync(Identity, chain.Leaf, Now(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Revokes: a revoker or admin may revoke anything; any caller may revoke a credential at or below one it
    /// holds (withdrawing what it delegated). A new list version is signed, stored with the audit record in one
    /// transaction, and then pushed to every subscriber. Returns the list's sequence.
    /// </summary>
    /// <exception cref="AuthorityException">Unauthorized, CredentialUnknown, OutOfRange, Unavailable.</exception>
    public async Task<ulong> RevokeAsync(Caller caller, RevocationEntry entry, string reason, CancellationToken cancellationToken = default)
    {
        var (sequence, published) = await RevokeUnpublishedAsync(caller, entry, reason, cancellationToken).ConfigureAwait(false);
        if (published is not null)
        {
            Publish(published);
        }

        return sequence;
    }

    /// <summary>
    /// Publishes a list <see cref="RevokeUnpublishedAsync"/> committed: the authority's own channels are
    /// re-checked and every subscriber is sent the list.
    /// </summary>
    internal void Publish(SignedRevocationList list) => Apply(list);

    /// <summary>
    /// As <see cref="RevokeAsync"/>, but the committed list is returned rather than applied, so a caller revoking
    /// its own credential over its channel hears the reply before that channel closes.
    /// </summary>
    internal async Task<(ulong Sequence, SignedRevocationList? Published)> RevokeUnpublishedAsync(Caller caller, RevocationEntry entry, string reason, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(reason);
        if (System.Text.Encoding.UTF8.GetByteCount(reason) > AuthorityLimits.MaxReasonLength)
        {
            throw Refuse(AuthorityErrorCode.OutOfRange, $"A reason has at most {AuthorityLimits.MaxReasonLength} bytes.");
        }

        var privileged = caller.Has(Identity.Identifier, AuthorityRoles.Revoker);
        var published = await WriteAsync(async tx =>
        {
            var principal = string.Empty;
            if (entry.Kind == RevocationKind.Credential)
            {
                var above = await ChainAboveAsync(tx, entry.Value, cancellationToken).ConfigureAwait(false);
                if (above.Count == 0 && !privileged)
                {
                    throw Refuse(AuthorityErrorCode.CredentialUnknown, $"No credential {Convert.ToHexStringLower(entry.Value)} is registered here.");
                }

                if (!privileged && !above.Any(r => r.Subject == caller.ToString()))
                {
                    throw Refuse(AuthorityErrorCode.Unauthorized, "Revoking a credential needs the revoker role, or holding it or one above it.");
                }

                principal = above.Count > 0 ? above[^1].Principal : string.Empty;
            }
            else if (!privileged)
            {
                throw Refuse(AuthorityErrorCode.Unauthorized, "Revoking a subject or a principal needs the revoker role.");
            }
            else if (entry.Kind == RevocationKind.Principal)
            {
                principal = System.Text.Encoding.UTF8.GetString(entry.Value);
            }

            var held = await tx.LatestDocumentAsync(RevocationsKind, string.Empty, cancellationToken).ConfigureAwait(false);
            var current = held is null ? null : SignedRevocationList.Decode(held.Encoded).List;
            if (current?.Contains(entry) == true)
            {
                return null; // Revoked already: nothing new to sign or push.
            }

            var now = Now();
            var entries = current?.Entries ?? [];
            if (entries.Length >= _options.MaxRevocationEntries)
            {
                // The last scan found when the next entry becomes droppable: until then a full list is refused without
                // reading every entry's credential again inside the write transaction.
                if (now.UtcTicks < Volatile.Read(ref _revocationsPrunableAtTicks))
                {
                    throw Refuse(AuthorityErrorCode.OutOfRange, $"The revocation list holds its limit of {_options.MaxRevocationEntries} entries and none has expired; revoke by subject or principal.");
                }

                entries = await WithoutExpiredCredentialsAsync(tx, entries, now, cancellationToken).ConfigureAwait(false);
                if (entries.Length >= _options.MaxRevocationEntries)
                {
                    throw Refuse(AuthorityErrorCode.OutOfRange, $"The revocation list holds its limit of {_options.MaxRevocationEntries} entries and none has expired; revoke by subject or principal.");
                }

                LogPruned(_logger, current!.Entries.Length - entries.Length);
            }

            var list = new RevocationList(Identity.Identifier, (current?.Sequence ?? 0) + 1, now, [.. entries, entry]);
            if (entry.Kind == RevocationKind.Credential)
            {
                // Its credential may expire before the earliest time found by the last scan.
                Volatile.Write(ref _revocationsPrunableAtTicks, 0);
            }

            var signed = await SignedRevocationList.SignAsync(list, Identity, cancellationToken).ConfigureAwait(false);
            await tx.InsertDocumentAsync(new StoredDocument(RevocationsKind, string.Empty, (long)list.Sequence, signed.Encode(), now), cancellationToken).ConfigureAwait(false);
            await AuditAsync(tx, caller, principal, "revoke", entry.ToString(), reason, cancellationToken).ConfigureAwait(false);
            return signed;
        }, cancellationToken).ConfigureAwait(false);

        if (published is null)
        {
            return (CurrentRevocations?.List.Sequence ?? 0, null);
        }

        _metrics.Revoked(entry.Kind);
        LogRevoked(_logger, caller.Identifier, entry, published.List.Sequence);
        return (published.List.Sequence, published);
    }

    // A revoked credential that expired (with the margin for slow clocks) is refused by expiry alone, and so is
    // everything delegated below it (a delegation never outlives its parent). Unknown ids stay: their expiry is unknown.
    private async Task<ImmutableArray<RevocationEntry>> WithoutExpiredCredentialsAsync(IAuthorityTransaction tx, ImmutableArray<RevocationEntry> entries, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var kept = ImmutableArray.CreateBuilder<RevocationEntry>(entries.Length);
        var nextPrunable = DateTimeOffset.MaxValue;
        foreach (var listed in entries)
        {
            if (listed.Kind == RevocationKind.Credential
                && await tx.FindCredentialAsync(listed.Value, cancellationToken).ConfigureAwait(false) is { } record)
            {
                var droppable = record.NotAfter + _options.RevocationPruneMargin;
                if (droppable <= now)
                {
                    continue;
                }

                nextPrunable = droppable < nextPrunable ? droppable : nextPrunable;
            }

            kept.Add(listed);
        }

        Volatile.Write(ref _revocationsPrunableAtTicks, nextPrunable.UtcTicks);
        return kept.DrainToImmutable();
    }

    /// <summary>Publishes a new version of <paramref name="resource"/>'s policy (admin). Returns its version.</summary>
    /// <exception cref="AuthorityException">Unauthorized, Malformed (the text is not a policy), OutOfRange, Unavailable.</exception>
    public async Task<ulong> PublishPolicyAsync(Caller caller, string resource, string text, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(caller);
        if (!caller.Has(Identity.Identifier, AuthorityRoles.Admin))
        {
            throw Refuse(AuthorityErrorCode.Unauthorized, "Publishing a policy needs the admin role.");
        }

        if (string.IsNullOrEmpty(resource) || System.Text.Encoding.UTF8.GetByteCount(resource) > AuthorityLimits.MaxResourceLength)
        {
            throw Refuse(AuthorityErrorCode.OutOfRange, $"A resource name has 1 to {AuthorityLimits.MaxResourceLength} bytes.");
        }

        if (!AccessPolicy.TryParse(text, out _, out var error))
        {
            throw Refuse(AuthorityErrorCode.Malformed, $"The policy does not parse: {error.Message}");
        }

        var signed = await WriteAsync(async tx =>
        {
            var held = await tx.LatestDocumentAsync(PolicyKind, resource, cancellationToken).ConfigureAwait(false);
            var now = Now();
            var document = new PolicyDocument(Identity.Identifier, resource, (ulong)((held?.Version ?? 0) + 1), now, text);
            var signed = await SignedPolicyDocument.SignAsync(document, Identity, cancellationToken).ConfigureAwait(false);
            await tx.InsertDocumentAsync(new StoredDocument(PolicyKind, resource, (long)document.Version, signed.Encode(), now), cancellationToken).ConfigureAwait(false);
            await AuditAsync(tx, caller, string.Empty, "policy", resource, $"version {document.Version}: {text}", cancellationToken).ConfigureAwait(false);
            return signed;
        }, cancellationToken).ConfigureAwait(false);
        _metrics.PolicyPublished();
        Apply(signed);
        return signed.Document.Version;
    }

    /// <summary>Queries the delegation registry (admin, revoker or auditor).</summary>
    /// <exception cref="AuthorityException">Unauthorized, Malformed (a bad value), Unavailable.</exception>
    public async Task<IReadOnlyList<RegistryEntry>> QueryAsync(Caller caller, RegistryQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(query);
        var authority = Identity.Identifier;
        if (!caller.Has(authority, AuthorityRoles.Auditor) && !caller.Has(authority, AuthorityRoles.Revoker))
        {
            throw Refuse(AuthorityErrorCode.Unauthorized, "Querying the registry needs the auditor, revoker or admin role.");
        }

        var records = await Store(async () =>
        {
            await using var tx = await _store.BeginAsync(write: false, cancellationToken).ConfigureAwait(false);
            return query.Kind switch
            {
                RegistryQueryKind.ActingFor => await ActingForAsync(tx, ParsePrincipal(query.Value), cancellationToken).ConfigureAwait(false),
                RegistryQueryKind.Below => await BelowAsync(tx, ParseId(query.Value), cancellationToken).ConfigureAwait(false),
                _ => await ChainAboveAsync(tx, ParseId(query.Value), cancellationToken).ConfigureAwait(false),
            };
        }).ConfigureAwait(false);
        return [.. records.Select(ToEntry)];
    }

    /// <summary>Verifies the audit log from its first record, in pages; the result names the first bad record.</summary>
    public Task<AuditVerification> VerifyAuditAsync(AuditHead? expectedLast = null, CancellationToken cancellationToken = default) =>
        Store(async () =>
        {
            await using var tx = await _store.BeginAsync(write: false, cancellationToken).ConfigureAwait(false);
            return await AuditChain.VerifyAsync(tx, Identity.Verified, expectedLast, cancellationToken: cancellationToken).ConfigureAwait(false);
        });

    /// <summary>Reads audit records from <paramref name="fromSequence"/> on, in pages.</summary>
    public Task<IReadOnlyList<AuditRecord>> ReadAuditAsync(long fromSequence, int limit, CancellationToken cancellationToken = default) =>
        Store(async () =>
        {
            await using var tx = await _store.BeginAsync(write: false, cancellationToken).ConfigureAwait(false);
            return await tx.ReadAuditAsync(fromSequence, limit, cancellationToken).ConfigureAwait(false);
        });

    private async Task<IReadOnlyList<CredentialRecord>> ActingForAsync(IAuthorityTransaction tx, Principal principal, CancellationToken cancellationToken)
    {
        var found = await tx.FindByPrincipalAsync(principal.ToString(), Now(), cancellationToken).ConfigureAwait(false);
        var list = CurrentRevocations?.List;
        return [.. found.Where(r => list is null || !IsRevoked(list, r)).Take(AuthorityLimits.MaxQueryResults)];
    }

    // A credential is out when it or anything above it is revoked; the registry knows its ancestors.
    private static bool IsRevoked(RevocationList list, CredentialRecord record)
    {
        var chain = CredentialChain.Decode(record.Chain);
        return chain.Credentials.Any(link => list.FindRevocation(link.Credential) is not null);
    }

    private static async Task<IReadOnlyList<CredentialRecord>> BelowAsync(IAuthorityTransaction tx, byte[] id, CancellationToken cancellationToken)
    {
        var found = new List<CredentialRecord>();
        var frontier = new Queue<byte[]>([id]);
        while (frontier.TryDequeue(out var next) && found.Count < AuthorityLimits.MaxQueryResults)
        {
            foreach (var child in await tx.FindChildrenAsync(next, cancellationToken).ConfigureAwait(false))
            {
                found.Add(child);
                frontier.Enqueue(child.Id);
            }
        }

        return found.Count > AuthorityLimits.MaxQueryResults ? found[..AuthorityLimits.MaxQueryResults] : found;
    }

    // Root first, the named credential last; empty when it is not registered.
    private static async Task<IReadOnlyList<CredentialRecord>> ChainAboveAsync(IAuthorityTransaction tx, byte[] id, CancellationToken cancellationToken)
    {
        var chain = new List<CredentialRecord>();
        byte[]? next = id;
        while (next is not null && chain.Count < CredentialLimits.MaxChainLength)
        {
            var record = await tx.FindCredentialAsync(next, cancellationToken).ConfigureAwait(false);
            if (record is null)
            {
                break;
            }

            chain.Add(record);
            next = record.ParentId;
        }

        chain.Reverse();
        return chain;
    }

    private void Apply(SignedRevocationList list)
    {
        if (Revocations.Merge(list, Identity.Verified) == RevocationMergeResult.Accepted)
        {
            RevocationsPublished?.Invoke(list);
        }
    }

    private void Apply(SignedPolicyDocument document)
    {
        if (_policies.Merge(document, Identity.Verified) == RevocationMergeResult.Accepted)
        {
            PolicyPublished?.Invoke(document);
        }
    }

    private Task<AuditRecord> AuditAsync(IAuthorityTransaction tx, Caller caller, string principal, string action, string target, string reason, CancellationToken cancellationToken) =>
        AuditChain.AppendAsync(tx, new AuditDraft(Now(), caller.ToString(), principal, action, target, reason), Identity, cancellationToken);

    private static CredentialRecord ToRecord(CredentialChain chain, DateTimeOffset now)
    {
        var leaf = chain.Leaf.Credential;
        return new CredentialRecord(
            leaf.Id, leaf.Parent?.Id, leaf.Issuer.ToString(), leaf.Subject.ToString(), leaf.Principal.ToString(), leaf.Attributes.Encode(),
            leaf.NotBefore, leaf.NotAfter, chain.Encoded, now);
    }

    private static bool SameSigned(CredentialRecord record, SignedCredential credential) =>
        System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(CredentialChain.Decode(record.Chain).Leaf.SignedHash, credential.SignedHash);

    private static RegistryEntry ToEntry(CredentialRecord record) =>
        new(record.Id, record.ParentId, Identifier.Parse(record.Issuer), Identifier.Parse(record.Subject), Principal.Parse(record.Principal), AttributeSet.Decode(record.Attributes), record.NotBefore, record.NotAfter);

    private static Principal ParsePrincipal(string text)
    {
        try
        {
            return Principal.Parse(text);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw Refuse(AuthorityErrorCode.Malformed, "The query's value is not a principal.");
        }
    }

    private static byte[] ParseId(string text)
    {
        try
        {
            var id = Convert.FromHexString(text);
            return id.Length == CredentialLimits.CredentialIdLength ? id : throw Refuse(AuthorityErrorCode.Malformed, "A credential id is 32 hex digits.");
        }
        catch (FormatException)
        {
            throw Refuse(AuthorityErrorCode.Malformed, "A credential id is 32 hex digits.");
        }
    }

    private DateTimeOffset Now() => DateTimeOffset.FromUnixTimeMilliseconds(_time.GetUtcNow().ToUnixTimeMilliseconds());

    private static AuthorityException Refuse(AuthorityErrorCode code, string message) => new(code, message);

    // A write transaction, retried with doubling back-off while the store is unreachable. A refusal thrown by
    // the work rolls the transaction back (it is disposed uncommitted) and is not retried.
    private async Task<T> WriteAsync<T>(Func<IAuthorityTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await using var tx = await _store.BeginAsync(write: true, cancellationToken).ConfigureAwait(false);
                var result = await work(tx).ConfigureAwait(false);
                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                return result;
            }
            catch (AuthorityStoreException e) when (e.Kind == AuthorityStoreErrorKind.Unavailable && attempt < _options.StoreRetries)
            {
                _metrics.StoreRetry();
                LogStoreRetry(_logger, attempt + 1, e.Message);
                await Task.Delay(_options.StoreRetryDelay * (1 << attempt), _time, cancellationToken).ConfigureAwait(false);
            }
            catch (AuthorityStoreException e)
            {
                throw StoreFailure(e);
            }
            catch (WireFormatException e)
            {
                // A stored record that does not decode: the store was altered outside the authority.
                throw new AuthorityException(AuthorityErrorCode.Internal, "A stored record does not decode.", e);
            }
        }
    }

    private static async Task<T> Store<T>(Func<Task<T>> read)
    {
        try
        {
            return await read().ConfigureAwait(false);
        }
        catch (AuthorityStoreException e)
        {
            throw StoreFailure(e);
        }
    }

    private static async Task Store(Func<Task> work)
    {
        try
        {
            await work().ConfigureAwait(false);
        }
        catch (AuthorityStoreException e)
        {
            throw StoreFailure(e);
        }
    }

    private static AuthorityException StoreFailure(AuthorityStoreException e) =>
        new(e.Kind == AuthorityStoreErrorKind.Unavailable ? AuthorityErrorCode.Unavailable : AuthorityErrorCode.Internal, $"The store failed: {e.Message}", e);

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Enrolled {Subject}: credential {CredentialId} for {Principal}")]
    private static partial void LogEnrolled(ILogger logger, Identifier subject, string credentialId, Principal principal);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "{Caller} revoked {Entry}: revocation list {Sequence}")]
    private static partial void LogRevoked(ILogger logger, Identifier caller, RevocationEntry entry, ulong sequence);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "The revocation list was full: dropped {Count} entries of credentials expired past the margin")]
    private static partial void LogPruned(ILogger logger, int count);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "The store is unavailable (attempt {Attempt}); retrying: {Why}")]
    private static partial void LogStoreRetry(ILogger logger, int attempt, string why);
}
