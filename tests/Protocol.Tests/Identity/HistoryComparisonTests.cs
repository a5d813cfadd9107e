using SecureChannels.Protocol.Identity;
using static SecureChannels.Protocol.Tests.Identity.IdentityTestKit;

namespace SecureChannels.Protocol.Tests.Identity;

/// <summary>How two histories of one identifier relate: Same, Newer, Older or Forked.</summary>
public sealed class HistoryComparisonTests
{
    [Fact]
    public async Task HistoryComparedWithItselfOrItsDecodedCopyIsSame()
    {
        var identity = await NewRotatedIdentityAsync(NewClock(), rotations: 1);

        Assert.Equal(HistoryComparison.Same, identity.History.CompareTo(identity.History));
        Assert.Equal(HistoryComparison.Same, IdentityHistory.Decode(identity.History.Encoded).CompareTo(identity.History));
    }

    [Fact]
    public async Task RotatedHistoryIsNewerThanTheOneBeforeTheRotation()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var once = await identity.RotateAsync(NewSigner(), time);
        var twice = await once.RotateAsync(NewSigner(), time);

        Assert.Equal(HistoryComparison.Newer, once.History.CompareTo(identity.History));
        Assert.Equal(HistoryComparison.Newer, twice.History.CompareTo(identity.History));
        Assert.Equal(HistoryComparison.Newer, twice.History.CompareTo(once.History));
    }

    [Fact]
    public async Task HistoryBeforeARotationIsOlderThanTheRotatedOne()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var rotated = await identity.RotateAsync(NewSigner(), time);

        Assert.Equal(HistoryComparison.Older, identity.History.CompareTo(rotated.History));
    }

    [Fact]
    public async Task TwoDifferentRotationsFromTheSameStateAreForked()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var left = await identity.RotateAsync(NewSigner(), time);
        var right = await identity.RotateAsync(NewSigner(), time);

        Assert.Equal(left.Identifier, right.Identifier);
        Assert.Equal(HistoryComparison.Forked, left.History.CompareTo(right.History));
        Assert.Equal(HistoryComparison.Forked, right.History.CompareTo(left.History));
    }

    [Fact]
    public async Task ForkFollowedByMoreRotationsOnOneSideIsStillForked()
    {
        var time = NewClock();
        var identity = await NewIdentityAsync(time);
        var left = await identity.RotateAsync(NewSigner(), time);
        var right = await identity.RotateAsync(NewSigner(), time);
        var leftLonger = await left.RotateAsync(NewSigner(), time);

        Assert.Equal(HistoryComparison.Forked, leftLonger.History.CompareTo(right.History));
        Assert.Equal(HistoryComparison.Forked, right.History.CompareTo(leftLonger.History));
    }

    [Fact]
    public async Task HistoriesOfDifferentIdentitiesAreForked()
    {
        var time = NewClock();
        var one = await NewIdentityAsync(time);
        var other = await NewIdentityAsync(time);

        Assert.Equal(HistoryComparison.Forked, one.History.CompareTo(other.History));
    }

    [Fact]
    public async Task CompareToRefusesNull()
    {
        var identity = await NewIdentityAsync(NewClock());

        Assert.Throws<ArgumentNullException>(() => identity.History.CompareTo(null!));
    }
}
