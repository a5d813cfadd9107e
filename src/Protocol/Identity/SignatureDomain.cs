using System.Runtime.CompilerServices;
using System.Text;
using NSec.Cryptography;
using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Protocol.Identity;

/// <summary>
/// Domain separation for every Ed25519 signature the protocol makes: the signed message is
/// <c>ASCII(domain) || 0x00 || body</c>, with a domain per object kind and version, so a signature over one
/// kind of object can never be replayed as a signature over another.
/// </summary>
public static class SignatureDomain
{
    /// <summary>A change of an identity's history.</summary>
    public const string IdentityChange = "securechannels/identity-change/v1";

    /// <summary>An attestation binding a Noise static key to an identity.</summary>
    public const string KeyAttestation = "securechannels/key-attestation/v1";

    /// <summary>A credential (root or delegated).</summary>
    public const string Credential = "securechannels/credential/v1";

    /// <summary>A revocation list.</summary>
    public const string RevocationList = "securechannels/revocation-list/v1";

    /// <summary>An authority's receipt for a delegation recorded in its registry.</summary>
    public const string DelegationReceipt = "securechannels/delegation-receipt/v1";

    /// <summary>A policy document an authority publishes for one resource.</summary>
    public const string PolicyDocument = "securechannels/policy-document/v1";

    /// <summary>The hash of one record of an authority's audit log.</summary>
    public const string AuditRecord = "securechannels/audit-record/v1";

    /// <summary>Length of an Ed25519 signature.</summary>
    public const int SignatureLength = 64;

    /// <summary>Length of an Ed25519 public key.</summary>
    public const int PublicKeyLength = 32;

    /// <summary>Signs <paramref name="body"/> under <paramref name="domain"/>.</summary>
    public static async ValueTask<byte[]> SignAsync(ISigner signer, string domain, ReadOnlyMemory<byte> body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(signer);
        var signature = new byte[SignatureLength];
        await signer.SignAsync(Message(domain, body.Span), signature, cancellationToken).ConfigureAwait(false);
        return signature;
    }

    /// <summary>
    /// TESTING ONLY: when set, counts the verifications made in this async flow, so a test can prove a repeat handshake
    /// makes none. Flow-local, so tests running in parallel do not count each other's.
    /// </summary>
    internal static AsyncLocal<StrongBox<int>?> VerificationsForTestingOnly { get; } = new();

    /// <summary>True when <paramref name="signature"/> is a valid signature of <paramref name="body"/> under <paramref name="domain"/> by <paramref name="publicKey"/>.</summary>
    public static bool Verify(ReadOnlySpan<byte> publicKey, string domain, ReadOnlySpan<byte> body, ReadOnlySpan<byte> signature)
    {
        if (VerificationsForTestingOnly.Value is { } count)
        {
            Interlocked.Increment(ref count.Value);
        }

        if (signature.Length != SignatureLength
            || !PublicKey.TryImport(SignatureAlgorithm.Ed25519, publicKey, KeyBlobFormat.RawPublicKey, out var key)
            || key is null)
        {
            return false;
        }

        return SignatureAlgorithm.Ed25519.Verify(key, Message(domain, body), signature);
    }

    private static byte[] Message(string domain, ReadOnlySpan<byte> body)
    {
        var prefix = Encoding.ASCII.GetByteCount(domain) + 1;
        var message = new byte[prefix + body.Length];
        Encoding.ASCII.GetBytes(domain, message);
        body.CopyTo(message.AsSpan(prefix));
        return message;
    }
}
