using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Authority;

/// <summary>The kinds of authority message (docs/protocol.md §10.2). Requests are below 0x40; the authority's messages above.</summary>
public enum AuthorityMessageType : byte
{
    /// <summary>Present a ticket; the reply is the issued credential chain.</summary>
    Enroll = 0x01,

    /// <summary>Ask for a fresh credential replacing one the caller holds; the reply is the new chain.</summary>
    Refresh = 0x02,

    /// <summary>Record a delegation the caller made (the caller is the leaf's issuer).</summary>
    RegisterDelegation = 0x03,

    /// <summary>Receive revocation lists and policy documents as they are published, starting with what the caller lacks.</summary>
    Subscribe = 0x04,

    /// <summary>Create a one-time enrollment ticket (enroller or admin).</summary>
    CreateTicket = 0x05,

    /// <summary>Revoke a credential (and its subtree), a subject or a principal.</summary>
    Revoke = 0x06,

    /// <summary>Query the delegation registry.</summary>
    Query = 0x07,

    /// <summary>Publish a new version of a policy document (admin).</summary>
    PublishPolicy = 0x08,

    /// <summary>The request succeeded; the body is its result.</summary>
    Reply = 0x40,

    /// <summary>The request was refused; the body is <c>[code: uint, detail: str]</c>.</summary>
    Refusal = 0x41,

    /// <summary>A signed revocation list, pushed to subscribers (request id 0).</summary>
    Revocations = 0x50,

    /// <summary>A signed policy document, pushed to subscribers (request id 0).</summary>
    Policy = 0x51,
}

/// <summary>
/// One authority message: the payload of exactly one secure-channel message.
/// Encoding: <c>[version = 1, type: uint, request_id: uint, body: bin]</c>; pushes carry request id 0.
/// </summary>
/// <param name="Type">What it is.</param>
/// <param name="RequestId">Chosen by the requester (≥ 1), echoed by the reply or refusal.</param>
/// <param name="Body">The type's body encoding.</param>
public sealed record AuthorityMessage(AuthorityMessageType Type, ulong RequestId, byte[] Body)
{
    private const ulong CurrentVersion = 1;

    /// <summary>The canonical encoding.</summary>
    public byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(4);
        writer.WriteUnsigned(CurrentVersion);
        writer.WriteUnsigned((ulong)Type);
        writer.WriteUnsigned(RequestId);
        writer.WriteBytes(Body);
        return writer.ToArray();
    }

    /// <summary>Decodes one message; the type is checked to be known.</summary>
    /// <exception cref="WireFormatException">Malformed, non-canonical, too large or of an unknown type.</exception>
    public static AuthorityMessage Decode(ReadOnlyMemory<byte> encoded) =>
        CanonicalEncoding.Decode(encoded, "authority message", AuthorityLimits.MaxMessageLength, Read, static m => m.Encode());

    private static AuthorityMessage Read(ref CanonicalReader reader)
    {
        reader.ReadArray("authority message", 4, 4);
        reader.ReadVersion(CurrentVersion);
        var type = reader.ReadUnsigned("type");
        if (type > byte.MaxValue || !Enum.IsDefined((AuthorityMessageType)type))
        {
            throw new WireFormatException(WireErrorKind.Malformed, $"authority message: type {type} is unknown.");
        }

        var id = reader.ReadUnsigned("request_id");
        var body = reader.ReadBytes("body", 0, AuthorityLimits.MaxMessageLength);
        return new AuthorityMessage((AuthorityMessageType)type, id, body);
    }

    /// <summary>A refusal of request <paramref name="requestId"/>.</summary>
    public static AuthorityMessage Refuse(ulong requestId, AuthorityErrorCode code, string detail)
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(2);
        writer.WriteUnsigned((ulong)code);
        writer.WriteText(detail.Length > AuthorityLimits.MaxReasonLength ? detail[..AuthorityLimits.MaxReasonLength] : detail);
        return new AuthorityMessage(AuthorityMessageType.Refusal, requestId, writer.ToArray());
    }

    /// <summary>Reads a refusal's body as the exception it stands for.</summary>
    /// <exception cref="WireFormatException">The body is malformed.</exception>
    public AuthorityException ToException()
    {
        var reader = new CanonicalReader(Body, "refusal");
        reader.ReadArray("refusal", 2, 2);
        var code = reader.ReadUnsigned("code");
        var detail = reader.ReadText("detail", AuthorityLimits.MaxReasonLength * 4);
        reader.EnsureEnd();
        var known = code <= ushort.MaxValue && Enum.IsDefined((AuthorityErrorCode)code) ? (AuthorityErrorCode)code : AuthorityErrorCode.Internal;
        return new AuthorityException(known, $"The authority refused: {known}: {detail}");
    }
}
