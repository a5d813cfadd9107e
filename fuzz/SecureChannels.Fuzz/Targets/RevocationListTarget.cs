using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Fuzz.Targets;

/// <summary>
/// Revocation lists. First byte 0: <see cref="SignedRevocationList.Decode"/>, <see cref="SignedRevocationList.Verify"/>
/// and <see cref="RevocationRegistry.Merge"/> into a registry that already holds the authority's list number 2, then
/// bob's chain verified against that registry. 1 (signed): the rest is an unsigned <see cref="RevocationList"/>, signed
/// by the cast member it names, then merged and applied the same way, so sequence, issuer and entry matching are explored.
/// Expected: <see cref="CredentialException"/> (malformed, bad signature, revoked); <see cref="WireFormatException"/>
/// from decoding the unsigned body.
/// </summary>
public sealed class RevocationListTarget : IFuzzTarget
{
    private static readonly SignedRevocationList Current =
        SignedRevocationList.SignAsync(new RevocationList(FuzzWorld.Authority.Identifier, 2, FuzzWorld.Now.AddHours(-1), [RevocationEntry.ForCredential(FuzzWorld.Id(9))]), FuzzWorld.Authority).GetAwaiter().GetResult();

    public string Name => "revocation-list";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        var signedMode = input[0] % 2 == 1;
        try
        {
            var list = signedMode ? Signed(input[1..]) : SignedRevocationList.Decode(input[1..].ToArray());
            if (list is null)
            {
                return;
            }

            list.Verify(FuzzWorld.Authority.Verified);
            var registry = new RevocationRegistry();
            registry.Merge(Current, FuzzWorld.Authority.Verified);
            var result = registry.Merge(list, FuzzWorld.Authority.Verified);
            var held = registry.Find(FuzzWorld.Authority.Identifier);
            if (held is null || held.List.Sequence < Current.List.Sequence)
            {
                throw new FuzzInvariantException($"A merge ({result}) left the registry without a list at least as new as the one it held.");
            }

            FuzzWorld.NewVerifier(registry).Verify(FuzzWorld.BobChain, FuzzWorld.Bob.Identifier);
        }
        catch (CredentialException)
        {
        }
        catch (WireFormatException) when (signedMode)
        {
        }
    }

    // Signed by whoever it names (only the authority is trusted for its lists); a stranger's cannot be signed here.
    private static SignedRevocationList? Signed(ReadOnlySpan<byte> body)
    {
        var list = RevocationList.Decode(body.ToArray());
        return FuzzWorld.Find(list.Issuer) is { } issuer ? SignedRevocationList.SignAsync(list, issuer).GetAwaiter().GetResult() : null;
    }

    public IEnumerable<byte[]> Seeds()
    {
        var next = new RevocationList(FuzzWorld.Authority.Identifier, 3, FuzzWorld.Now, [
            RevocationEntry.ForCredential(FuzzWorld.BobChain.Leaf.Credential.Id),
            RevocationEntry.ForSubject(FuzzWorld.Bob.Identifier),
            RevocationEntry.ForPrincipal(FuzzWorld.Principal),
        ]);
        yield return [0, .. Current.Encode()];
        yield return [0, .. SignedRevocationList.SignAsync(next, FuzzWorld.Authority).GetAwaiter().GetResult().Encode()];
        yield return [1, .. next.Encoded];
        yield return [1, .. Current.List.Encoded];
    }
}
