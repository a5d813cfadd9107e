using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Fuzz.Targets;

/// <summary>
/// Key attestations. First byte 0: <see cref="SignedKeyAttestation.Decode"/> and <see cref="SignedKeyAttestation.Verify(VerifiedIdentity, ReadOnlySpan{byte}, DateTimeOffset, TimeSpan)"/>
/// against alice and her channel key. First byte 1 (signed): the rest is an unsigned <see cref="KeyAttestation"/>,
/// signed with alice's key, then verified, so validity, subject, change and key binding are explored. Expected:
/// <see cref="IdentityException"/>; <see cref="WireFormatException"/> from decoding the unsigned body.
/// </summary>
public sealed class KeyAttestationTarget : IFuzzTarget
{
    private static readonly byte[] AliceStatic = FuzzWorld.AliceChannelKey.PublicKey.ToArray();

    public string Name => "key-attestation";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        try
        {
            SignedKeyAttestation signed;
            if (input[0] % 2 == 0)
            {
                signed = SignedKeyAttestation.Decode(input[1..].ToArray());
            }
            else
            {
                var attestation = KeyAttestation.Decode(input[1..].ToArray());
                signed = new SignedKeyAttestation(attestation, SignatureDomain.SignAsync(FuzzWorld.AliceSigner, SignatureDomain.KeyAttestation, attestation.Encoded).AsTask().GetAwaiter().GetResult());
            }

            signed.Verify(FuzzWorld.Alice.Verified, AliceStatic, FuzzWorld.Now, TimeSpan.FromSeconds(60));
        }
        catch (IdentityException)
        {
        }
        catch (WireFormatException)
        {
        }
    }

    public IEnumerable<byte[]> Seeds()
    {
        yield return [0, .. FuzzWorld.AliceAttestation.Encode()];
        yield return [1, .. FuzzWorld.AliceAttestation.Attestation.Encoded];
    }
}
