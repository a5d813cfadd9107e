using Microsoft.Extensions.Time.Testing;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Protocol.Tests.Credentials;

public sealed class RevocationKeyRotationTests
{
    [Fact]
    public async Task AListSignedWithAKeyTheAuthorityRotatedAwayFromIsRefused()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero));
        using var oldKey = InMemorySigner.Generate();
        using var newKey = InMemorySigner.Generate();
        var before = await AgentIdentity.CreateAsync(oldKey, time);
        var staleList = await SignedRevocationList.SignAsync(new RevocationList(before.Identifier, ulong.MaxValue, time.GetUtcNow(), []), before);
        var after = await before.RotateAsync(newKey, time);
        var registry = new RevocationRegistry();

        var refused = Assert.Throws<CredentialException>(() => registry.Merge(staleList, after.Verified));

        Assert.Equal(CredentialErrorKind.BadSignature, refused.Kind);
        Assert.Null(registry.Find(after.Identifier));
        var current = await SignedRevocationList.SignAsync(new RevocationList(after.Identifier, 1, time.GetUtcNow(), []), after);
        Assert.Equal(RevocationMergeResult.Accepted, registry.Merge(current, after.Verified));
    }
}
