using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Fuzz.Targets;

/// <summary>
/// Credentials. First byte 0: <see cref="SignedCredential.Decode"/> (expected <see cref="CredentialException"/>);
/// 1: <see cref="Credential.Decode"/>; 2: <see cref="AttributeSet.Decode"/> (both expected <see cref="WireFormatException"/>).
/// Every decoder re-encodes and compares, so a successful decode is already a byte-identical round trip.
/// </summary>
public sealed class CredentialTarget : IFuzzTarget
{
    public string Name => "credential";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        var body = input[1..].ToArray();
        try
        {
            switch (input[0] % 3)
            {
                case 0:
                    SignedCredential.Decode(body);
                    break;
                case 1:
                    Credential.Decode(body);
                    break;
                default:
                    AttributeSet.Decode(body);
                    break;
            }
        }
        catch (CredentialException)
        {
        }
        catch (WireFormatException)
        {
        }
    }

    public IEnumerable<byte[]> Seeds()
    {
        yield return [0, .. FuzzWorld.AliceChain.Leaf.Encoded];
        yield return [0, .. FuzzWorld.BobChain.Leaf.Encoded];
        yield return [1, .. FuzzWorld.BobChain.Leaf.Credential.Encoded];
        yield return [2, .. FuzzWorld.AliceChain.Leaf.Credential.Attributes.Encode()];
    }
}
