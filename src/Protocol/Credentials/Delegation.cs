using System.Security.Cryptography;

namespace SecureChannels.Protocol.Credentials;

/// <summary>
/// The one rule of delegation: a child credential may only narrow its parent. Used by the issuer (to refuse
/// early) and by the verifier (to refuse for certain), so both apply exactly the same rule.
/// </summary>
internal static class Delegation
{
    /// <summary>Throws <see cref="CredentialException"/> (<see cref="CredentialErrorKind.Widened"/> or <see cref="CredentialErrorKind.BrokenChain"/>) unless <paramref name="child"/> narrows <paramref name="parent"/>.</summary>
    public static void CheckNarrows(SignedCredential parent, Credential child, int link)
    {
        var p = parent.Credential;
        if (child.Issuer != p.Subject)
        {
            throw new CredentialException(CredentialErrorKind.BrokenChain, $"Link {link} is issued by {child.Issuer}, not by the subject of link {link - 1} ({p.Subject}).");
        }

        if (child.Parent is null
            || !CryptographicOperations.FixedTimeEquals(child.Parent.Id, p.Id)
            || !CryptographicOperations.FixedTimeEquals(child.Parent.SignedHash, parent.SignedHash))
        {
            throw new CredentialException(CredentialErrorKind.BrokenChain, $"Link {link} does not name link {link - 1} as its parent.");
        }

        if (p.MaxDelegationDepth == 0 || child.MaxDelegationDepth >= p.MaxDelegationDepth)
        {
            throw Widened(link, WideningKind.DelegationDepthExceeded, $"link {link - 1} allows {p.MaxDelegationDepth} further hop(s); link {link} asks for {child.MaxDelegationDepth} after itself");
        }

        if (child.Principal != p.Principal)
        {
            throw Widened(link, WideningKind.DifferentPrincipal, $"it acts for {child.Principal}, its parent for {p.Principal}");
        }

        if (!child.Attributes.IsSubsetOf(p.Attributes, out var excess, out var excessIsName))
        {
            throw excessIsName
                ? Widened(link, WideningKind.AttributeAdded, $"it grants attribute '{excess}', which its parent lacks")
                : Widened(link, WideningKind.ValueOutsideParent, $"it grants {excess}, outside its parent's values");
        }

        if (child.NotAfter > p.NotAfter)
        {
            throw Widened(link, WideningKind.LaterExpiry, $"it ends at {child.NotAfter:O}, after its parent ({p.NotAfter:O})");
        }

        if (child.NotBefore < p.NotBefore)
        {
            throw Widened(link, WideningKind.EarlierStart, $"it starts at {child.NotBefore:O}, before its parent ({p.NotBefore:O})");
        }
    }

    private static CredentialException Widened(int link, WideningKind kind, string why) =>
        new(CredentialErrorKind.Widened, $"Link {link} widens its parent: {why}.", kind);
}
