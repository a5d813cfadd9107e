using System.CommandLine;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Cli.Commands;

/// <summary>What a verifier trusts, from files: authorities (<c>--trust</c>) and their revocation lists (<c>--revocations</c>).</summary>
internal static class CliTrust
{
    public static Option<string[]> TrustOption() => new("--trust")
    {
        Required = true,
        HelpName = "FILE[:ATTR,...]",
        Description = "A trusted authority's identity history file, optionally limited to some attributes: AUTHORITY.identity[:attr1,attr2]. Repeatable.",
    };

    public static Option<string[]> RevocationsOption() => new("--revocations")
    {
        HelpName = "FILE",
        Description = "A signed revocation list file of a trusted authority; the newest per authority applies. Repeatable.",
    };

    /// <summary>A verifier that trusts <paramref name="trust"/> under the lists in <paramref name="revocations"/>, at the system time.</summary>
    /// <remarks>
    /// A list must be signed by its (trusted) issuer: one that is not is bad input, not something to ignore. A list of an
    /// authority not trusted here could not affect any chain the verifier accepts; it is skipped with a warning.
    /// </remarks>
    public static async Task<CredentialVerifier> CreateVerifierAsync(IEnumerable<string> trust, IEnumerable<string> revocations)
    {
        var (anchors, registry) = await LoadAsync(trust, revocations).ConfigureAwait(false);
        return new CredentialVerifier(anchors, registry, TimeProvider.System);
    }

    /// <summary>The trusted authorities of <paramref name="trust"/> and the revocation lists of <paramref name="revocations"/> that apply to them.</summary>
    public static async Task<(TrustAnchors Anchors, RevocationRegistry Revocations)> LoadAsync(IEnumerable<string> trust, IEnumerable<string> revocations)
    {
        var anchors = new TrustAnchors();
        foreach (var spec in trust)
        {
            var (path, attributes) = CliParsing.TrustSpec(spec);
            anchors.Trust(CliFiles.ReadVerifiedHistory(path), attributes);
        }

        var registry = new RevocationRegistry();
        foreach (var path in revocations)
        {
            var list = CliFiles.ReadRevocations(path);
            if (anchors.Find(list.List.Issuer) is not { } anchor)
            {
                await CliOutput.WarnAsync($"{path}: ignored: its issuer {list.List.Issuer} is not a trusted authority (--trust).").ConfigureAwait(false);
                continue;
            }

            RevocationMergeResult result;
            try
            {
                result = registry.Merge(list, anchor.Identity);
            }
            catch (CredentialException e)
            {
                throw CliException.Usage($"{path}: the revocation list does not verify ({e.Kind}): {e.Message}");
            }

            if (result == RevocationMergeResult.Equivocation)
            {
                await CliOutput.WarnAsync($"{path}: ignored: {list.List.Issuer} signed two different revocation lists with sequence {list.List.Sequence}.").ConfigureAwait(false);
            }
        }

        return (anchors, registry);
    }
}
