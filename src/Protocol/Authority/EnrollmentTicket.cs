using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Protocol.Authority;

/// <summary>
/// A one-time enrollment ticket as its holder sees it: which authority made it (a tag), its id (the store's
/// handle) and its secret. Text form: <c>sct1_</c> + base64url(tag ‖ id ‖ secret), no padding. The authority
/// keeps only SHA-256 of the secret, so a leaked database does not leak usable tickets.
/// </summary>
public sealed class EnrollmentTicket
{
    private const string Prefix = "sct1_";
    private const int Length = AuthorityLimits.TicketAuthorityTagLength + AuthorityLimits.TicketIdLength + AuthorityLimits.TicketSecretLength;
    private readonly byte[] _secret;

    private EnrollmentTicket(byte[] authorityTag, byte[] id, byte[] secret)
    {
        AuthorityTag = authorityTag;
        Id = id;
        _secret = secret;
    }

    /// <summary>The first bytes of the issuing authority's identifier.</summary>
    public byte[] AuthorityTag { get; }

    /// <summary>The ticket's id.</summary>
    public byte[] Id { get; }

    /// <summary>The id as hex, for logs and audit: it is not the secret.</summary>
    public string IdText => Convert.ToHexStringLower(Id);

    /// <summary>Creates a fresh ticket for <paramref name="authority"/> from the system's cryptographic random source.</summary>
    public static EnrollmentTicket Create(Identifier authority) =>
        new(Tag(authority), RandomNumberGenerator.GetBytes(AuthorityLimits.TicketIdLength), RandomNumberGenerator.GetBytes(AuthorityLimits.TicketSecretLength));

    /// <summary>The tag a ticket of <paramref name="authority"/> carries.</summary>
    public static byte[] Tag(Identifier authority) => authority.Bytes[..AuthorityLimits.TicketAuthorityTagLength].ToArray();

    /// <summary>Parses the text form; false for anything else (no detail: the text is a secret).</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out EnrollmentTicket? ticket)
    {
        ticket = null;
        if (text is null || !text.StartsWith(Prefix, StringComparison.Ordinal) || text.Length != Prefix.Length + Base64Url.GetEncodedLength(Length))
        {
            return false;
        }

        // TryDecodeFromChars throws on characters outside the alphabet rather than returning false (found by fuzzing).
        var encoded = text.AsSpan(Prefix.Length);
        Span<byte> raw = stackalloc byte[Length];
        if (!Base64Url.IsValid(encoded) || !Base64Url.TryDecodeFromChars(encoded, raw, out var written) || written != Length)
        {
            return false;
        }

        ticket = FromBytes(raw);
        CryptographicOperations.ZeroMemory(raw);
        return true;
    }

    /// <summary>Reads the binary form (tag ‖ id ‖ secret) as carried in an ENROLL request.</summary>
    /// <exception cref="ArgumentException">Not the right length.</exception>
    public static EnrollmentTicket FromBytes(ReadOnlySpan<byte> raw)
    {
        if (raw.Length != Length)
        {
            throw new ArgumentException($"A ticket is {Length} bytes.", nameof(raw));
        }

        var tag = raw[..AuthorityLimits.TicketAuthorityTagLength].ToArray();
        var id = raw.Slice(AuthorityLimits.TicketAuthorityTagLength, AuthorityLimits.TicketIdLength).ToArray();
        var secret = raw[(AuthorityLimits.TicketAuthorityTagLength + AuthorityLimits.TicketIdLength)..].ToArray();
        return new EnrollmentTicket(tag, id, secret);
    }

    /// <summary>True when this ticket claims to come from <paramref name="authority"/>.</summary>
    public bool IsFrom(Identifier authority) => CryptographicOperations.FixedTimeEquals(AuthorityTag, Tag(authority));

    /// <summary>SHA-256 of the secret: what the authority stores and compares.</summary>
    public byte[] SecretHash() => SHA256.HashData(_secret);

    /// <summary>The binary form, for the ENROLL request (the caller should clear it after sending).</summary>
    public byte[] ToBytes() => [.. AuthorityTag, .. Id, .. _secret];

    /// <summary>The text form, to hand to the agent that will enroll. It is a secret: never log it.</summary>
    public string Reveal()
    {
        var raw = ToBytes();
        try
        {
            return Prefix + Base64Url.EncodeToString(raw);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(raw);
        }
    }

    /// <summary>The id only: a ticket's text is a secret, so ToString never shows it.</summary>
    public override string ToString() => $"ticket {IdText}";
}
