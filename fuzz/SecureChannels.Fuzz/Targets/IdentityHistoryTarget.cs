using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Fuzz.Targets;

/// <summary>
/// Identity histories. First byte 0: <see cref="IdentityHistory.Decode"/> and <see cref="IdentityHistory.Verify()"/>.
/// First byte 1 (signed): the rest is one <see cref="IdentityChange"/>, signed with the cast's key it names (the
/// authority's otherwise) and, when it links to a previous change, appended to the authority's genesis change with the
/// authority's key as the previous one; so the fuzzer reaches the linking, ordering and key rules behind the
/// signatures. Expected: <see cref="IdentityException"/>; <see cref="WireFormatException"/> from decoding a lone change.
/// </summary>
public sealed class IdentityHistoryTarget : IFuzzTarget
{
    public string Name => "identity-history";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        try
        {
            var history = input[0] % 2 == 0 ? IdentityHistory.Decode(input[1..].ToArray()) : Signed(input[1..]);
            if (history is null)
            {
                return;
            }

            var verified = history.Verify();
            if (verified.Identifier != Identifier.FromFirstChange(history.Changes[0].Change.Encoded))
            {
                throw new FuzzInvariantException("A verified identity's identifier is not the hash of its first change.");
            }
        }
        catch (IdentityException)
        {
        }
    }

    public IEnumerable<byte[]> Seeds()
    {
        var rotated = FuzzWorld.Authority.RotateAsync(FuzzWorld.BobSigner, FuzzWorld.Time).GetAwaiter().GetResult();
        yield return [0, .. FuzzWorld.Authority.History.Encoded];
        yield return [0, .. rotated.History.Encoded];
        yield return [1, .. FuzzWorld.Alice.History.Changes[0].Change.Encoded];
        yield return [1, .. rotated.History.Changes[1].Change.Encoded];
    }

    private static IdentityHistory? Signed(ReadOnlySpan<byte> body)
    {
        IdentityChange change;
        try
        {
            change = IdentityChange.Decode(body.ToArray());
        }
        catch (WireFormatException)
        {
            return null;
        }

        ISigner[] cast = [FuzzWorld.AuthoritySigner, FuzzWorld.AliceSigner, FuzzWorld.BobSigner];
        var own = cast.FirstOrDefault(s => s.PublicKey.Span.SequenceEqual(change.PublicKey)) ?? FuzzWorld.AuthoritySigner;
        var signature = Sign(own, change);
        if (change.PreviousChangeHash is null)
        {
            return new IdentityHistory([new SignedIdentityChange(change, signature, null)]);
        }

        var previous = Sign(FuzzWorld.AuthoritySigner, change);
        return new IdentityHistory([FuzzWorld.Authority.History.Changes[0], new SignedIdentityChange(change, signature, previous)]);
    }

    private static byte[] Sign(ISigner signer, IdentityChange change) =>
        SignatureDomain.SignAsync(signer, SignatureDomain.IdentityChange, change.Encoded).AsTask().GetAwaiter().GetResult();
}
