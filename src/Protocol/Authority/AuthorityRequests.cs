using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Authority;

/// <summary>What a new ticket grants (CREATE_TICKET): <c>[principal, attributes, ticket_lifetime_s: uint, credential_lifetime_s: uint, max_delegation_depth: uint]</c>.</summary>
/// <param name="Principal">On whose behalf the enrolled identity will act.</param>
/// <param name="Attributes">What its credential will grant.</param>
/// <param name="TicketLifetime">How long the ticket may wait to be used.</param>
/// <param name="CredentialLifetime">How long each issued credential lives (refreshes get the same); zero for the authority's default.</param>
/// <param name="MaxDelegationDepth">How many hops the credential may delegate.</param>
public sealed record TicketRequest(Principal Principal, AttributeSet Attributes, TimeSpan TicketLifetime, TimeSpan CredentialLifetime, int MaxDelegationDepth)
{
    /// <summary>The canonical encoding.</summary>
    public byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(5);
        Principal.Write(ref writer);
        Attributes.Write(ref writer);
        writer.WriteUnsigned((ulong)TicketLifetime.TotalSeconds);
        writer.WriteUnsigned((ulong)CredentialLifetime.TotalSeconds);
        writer.WriteUnsigned((ulong)MaxDelegationDepth);
        return writer.ToArray();
    }

    /// <summary>Decodes a request body.</summary>
    /// <exception cref="WireFormatException">Malformed or out of range.</exception>
    public static TicketRequest Decode(ReadOnlyMemory<byte> body) =>
        CanonicalEncoding.Decode(body, "ticket request", AuthorityLimits.MaxMessageLength, static (ref CanonicalReader r) =>
        {
            r.ReadArray("ticket request", 5, 5);
            var principal = Principal.Read(ref r);
            var attributes = AttributeSet.Read(ref r);
            var ticket = Seconds(ref r, "ticket_lifetime_s");
            var credential = Seconds(ref r, "credential_lifetime_s");
            var depth = r.ReadUnsigned("max_delegation_depth");
            if (depth >= CredentialLimits.MaxChainLength)
            {
                throw new WireFormatException(WireErrorKind.Malformed, "ticket request: max_delegation_depth is out of range.");
            }

            return new TicketRequest(principal, attributes, ticket, credential, (int)depth);
        }, static t => t.Encode());

    private static TimeSpan Seconds(ref CanonicalReader reader, string field)
    {
        var seconds = reader.ReadUnsigned(field);
        return seconds <= (ulong)TimeSpan.FromDays(3650).TotalSeconds
            ? TimeSpan.FromSeconds(seconds)
            : throw new WireFormatException(WireErrorKind.Malformed, $"ticket request: {field} is out of range.");
    }
}

/// <summary>A created ticket (CREATE_TICKET's reply): <c>[ticket: bin 56, expires_at: uint]</c>.</summary>
/// <param name="Ticket">The ticket; its text form is a secret for the enrolling agent only.</param>
/// <param name="ExpiresAt">When it stops working.</param>
public sealed record IssuedTicket(EnrollmentTicket Ticket, DateTimeOffset ExpiresAt)
{
    /// <summary>The canonical encoding.</summary>
    public byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(2);
        writer.WriteBytes(Ticket.ToBytes());
        writer.WriteUnsigned(Timestamps.ToUnixSeconds(ExpiresAt));
        return writer.ToArray();
    }

    /// <summary>Decodes a reply body.</summary>
    /// <exception cref="WireFormatException">Malformed.</exception>
    public static IssuedTicket Decode(ReadOnlyMemory<byte> body)
    {
        var reader = new CanonicalReader(body, "issued ticket");
        reader.ReadArray("issued ticket", 2, 2);
        var raw = reader.ReadBytes("ticket", AuthorityLimits.TicketAuthorityTagLength + AuthorityLimits.TicketIdLength + AuthorityLimits.TicketSecretLength);
        var expires = Timestamps.FromUnixSeconds(reader.ReadUnsigned("expires_at"), "expires_at");
        reader.EnsureEnd();
        return new IssuedTicket(EnrollmentTicket.FromBytes(raw), expires);
    }
}

/// <summary>A revocation request (REVOKE): <c>[kind: uint, value: bin, reason: str]</c>; the reply is <c>[sequence: uint]</c>.</summary>
/// <param name="Entry">What to revoke.</param>
/// <param name="Reason">Why, for the audit log.</param>
public sealed record RevokeRequest(RevocationEntry Entry, string Reason)
{
    /// <summary>The canonical encoding.</summary>
    public byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(3);
        writer.WriteUnsigned((ulong)Entry.Kind);
        writer.WriteBytes(Entry.Value);
        writer.WriteText(Reason);
        return writer.ToArray();
    }

    /// <summary>Decodes a request body.</summary>
    /// <exception cref="WireFormatException">Malformed.</exception>
    public static RevokeRequest Decode(ReadOnlyMemory<byte> body) =>
        CanonicalEncoding.Decode(body, "revoke request", AuthorityLimits.MaxMessageLength, static (ref CanonicalReader r) =>
        {
            r.ReadArray("revoke request", 3, 3);
            var kind = r.ReadUnsigned("kind");
            RevocationEntry entry = kind switch
            {
                (ulong)RevocationKind.Credential => RevocationEntry.ForCredential(r.ReadBytes("credential id", CredentialLimits.CredentialIdLength)),
                (ulong)RevocationKind.Subject => RevocationEntry.ForSubject(Identifier.FromBytes(r.ReadBytes("subject", Identifier.Length))),
                (ulong)RevocationKind.Principal => RevocationEntry.ForPrincipal(ParsePrincipal(r.ReadBytes("principal", 1, CredentialLimits.MaxValueLength + 7))),
                _ => throw new WireFormatException(WireErrorKind.Malformed, $"revoke request: kind {kind} is unknown."),
            };
            return new RevokeRequest(entry, r.ReadText("reason", AuthorityLimits.MaxReasonLength));
        }, static q => q.Encode());

    private static Principal ParsePrincipal(byte[] utf8)
    {
        try
        {
            return Principal.Parse(System.Text.Encoding.UTF8.GetString(utf8));
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new WireFormatException(WireErrorKind.Malformed, "revoke request: the principal is not one.", e);
        }
    }

    /// <summary>Encodes a sequence reply.</summary>
    public static byte[] EncodeSequence(ulong sequence)
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(1);
        writer.WriteUnsigned(sequence);
        return writer.ToArray();
    }

    /// <summary>Decodes a sequence reply (REVOKE, PUBLISH_POLICY).</summary>
    /// <exception cref="WireFormatException">Malformed.</exception>
    public static ulong DecodeSequence(ReadOnlyMemory<byte> body)
    {
        var reader = new CanonicalReader(body, "sequence reply");
        reader.ReadArray("sequence reply", 1, 1);
        var sequence = reader.ReadUnsigned("sequence");
        reader.EnsureEnd();
        return sequence;
    }
}

/// <summary>What a registry query asks for.</summary>
public enum RegistryQueryKind
{
    /// <summary>Every credential acting for a principal (value: its text form) that is valid now.</summary>
    ActingFor = 1,

    /// <summary>Every credential delegated below a credential (value: its id in hex), at any depth.</summary>
    Below = 2,

    /// <summary>The chain above a credential (value: its id in hex), from the root down to it.</summary>
    Above = 3,
}

/// <summary>A registry query (QUERY): <c>[kind: uint, value: str]</c>.</summary>
public sealed record RegistryQuery(RegistryQueryKind Kind, string Value)
{
    /// <summary>The canonical encoding.</summary>
    public byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(2);
        writer.WriteUnsigned((ulong)Kind);
        writer.WriteText(Value);
        return writer.ToArray();
    }

    /// <summary>Decodes a request body.</summary>
    /// <exception cref="WireFormatException">Malformed.</exception>
    public static RegistryQuery Decode(ReadOnlyMemory<byte> body) =>
        CanonicalEncoding.Decode(body, "registry query", 4096, static (ref CanonicalReader r) =>
        {
            r.ReadArray("registry query", 2, 2);
            var kind = r.ReadUnsigned("kind");
            if (kind is < 1 or > 3)
            {
                throw new WireFormatException(WireErrorKind.Malformed, $"registry query: kind {kind} is unknown.");
            }

            return new RegistryQuery((RegistryQueryKind)kind, r.ReadText("value", 1024));
        }, static q => q.Encode());
}

/// <summary>
/// One credential of the delegation registry, as a query returns it:
/// <c>[id: bin 16, parent_id: bin 16 | nil, issuer: bin 32, subject: bin 32, principal, attributes, not_before: uint, not_after: uint]</c>.
/// </summary>
public sealed record RegistryEntry(byte[] Id, byte[]? ParentId, Identifier Issuer, Identifier Subject, Principal Principal, AttributeSet Attributes, DateTimeOffset NotBefore, DateTimeOffset NotAfter)
{
    /// <summary>The id as hex.</summary>
    public string IdText => Convert.ToHexStringLower(Id);

    /// <summary>The parent's id as hex, or null for a root credential.</summary>
    public string? ParentIdText => ParentId is null ? null : Convert.ToHexStringLower(ParentId);

    /// <summary>Encodes a list of entries (QUERY's reply): <c>[entry, ...]</c>.</summary>
    public static byte[] EncodeList(IReadOnlyList<RegistryEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var writer = new CanonicalWriter();
        writer.WriteArray(entries.Count);
        foreach (var e in entries)
        {
            writer.WriteArray(8);
            writer.WriteBytes(e.Id);
            if (e.ParentId is null)
            {
                writer.WriteNil();
            }
            else
            {
                writer.WriteBytes(e.ParentId);
            }

            writer.WriteBytes(e.Issuer.Bytes);
            writer.WriteBytes(e.Subject.Bytes);
            e.Principal.Write(ref writer);
            e.Attributes.Write(ref writer);
            writer.WriteUnsigned(Timestamps.ToUnixSeconds(e.NotBefore));
            writer.WriteUnsigned(Timestamps.ToUnixSeconds(e.NotAfter));
        }

        return writer.ToArray();
    }

    /// <summary>Decodes QUERY's reply.</summary>
    /// <exception cref="WireFormatException">Malformed.</exception>
    public static IReadOnlyList<RegistryEntry> DecodeList(ReadOnlyMemory<byte> body)
    {
        var reader = new CanonicalReader(body, "registry entries");
        var count = reader.ReadArray("registry entries", 0, AuthorityLimits.MaxQueryResults);
        var entries = new RegistryEntry[count];
        for (var i = 0; i < count; i++)
        {
            reader.ReadArray("registry entry", 8, 8);
            var id = reader.ReadBytes("id", CredentialLimits.CredentialIdLength);
            var parent = reader.ReadBytesOrNil("parent_id", CredentialLimits.CredentialIdLength);
            var issuer = Identifier.FromBytes(reader.ReadBytes("issuer", Identifier.Length));
            var subject = Identifier.FromBytes(reader.ReadBytes("subject", Identifier.Length));
            var principal = Principal.Read(ref reader);
            var attributes = AttributeSet.Read(ref reader);
            var notBefore = Timestamps.FromUnixSeconds(reader.ReadUnsigned("not_before"), "not_before");
            var notAfter = Timestamps.FromUnixSeconds(reader.ReadUnsigned("not_after"), "not_after");
            entries[i] = new RegistryEntry(id, parent, issuer, subject, principal, attributes, notBefore, notAfter);
        }

        reader.EnsureEnd();
        return entries;
    }
}

/// <summary>A policy publication (PUBLISH_POLICY): <c>[resource: str, text: str]</c>; the reply is <c>[version: uint]</c>.</summary>
public sealed record PublishPolicyRequest(string Resource, string Text)
{
    /// <summary>The canonical encoding.</summary>
    public byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(2);
        writer.WriteText(Resource);
        writer.WriteText(Text);
        return writer.ToArray();
    }

    /// <summary>Decodes a request body.</summary>
    /// <exception cref="WireFormatException">Malformed.</exception>
    public static PublishPolicyRequest Decode(ReadOnlyMemory<byte> body) =>
        CanonicalEncoding.Decode(body, "policy publication", AuthorityLimits.MaxMessageLength, static (ref CanonicalReader r) =>
        {
            r.ReadArray("policy publication", 2, 2);
            return new PublishPolicyRequest(r.ReadText("resource", AuthorityLimits.MaxResourceLength), r.ReadText("text", Policy.AccessPolicy.MaxTextLength));
        }, static q => q.Encode());
}

/// <summary>A subscription (SUBSCRIBE): <c>[revocation_sequence: uint, policies: [[resource: str, version: uint], ...]]</c>: what the subscriber holds already.</summary>
public sealed record SubscribeRequest(ulong RevocationSequence, IReadOnlyDictionary<string, ulong> PolicyVersions)
{
    /// <summary>The canonical encoding (policies in ordinal order of resource).</summary>
    public byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(2);
        writer.WriteUnsigned(RevocationSequence);
        writer.WriteArray(PolicyVersions.Count);
        foreach (var (resource, version) in PolicyVersions.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            writer.WriteArray(2);
            writer.WriteText(resource);
            writer.WriteUnsigned(version);
        }

        return writer.ToArray();
    }

    /// <summary>Decodes a request body.</summary>
    /// <exception cref="WireFormatException">Malformed.</exception>
    public static SubscribeRequest Decode(ReadOnlyMemory<byte> body) =>
        CanonicalEncoding.Decode(body, "subscription", AuthorityLimits.MaxMessageLength, static (ref CanonicalReader r) =>
        {
            r.ReadArray("subscription", 2, 2);
            var sequence = r.ReadUnsigned("revocation_sequence");
            var count = r.ReadArray("policies", 0, 4096);
            var versions = new Dictionary<string, ulong>(count, StringComparer.Ordinal);
            for (var i = 0; i < count; i++)
            {
                r.ReadArray("policy", 2, 2);
                var resource = r.ReadText("resource", AuthorityLimits.MaxResourceLength);
                versions[resource] = r.ReadUnsigned("version");
            }

            return new SubscribeRequest(sequence, versions);
        }, static s => s.Encode());
}
