using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Protocol.Tests.Authority;

public sealed class EnrollmentTicketParsingTests
{
    private static readonly Identifier AuthorityId = Identifier.FromFirstChange([1, 2, 3]);

    [Fact]
    public void TicketTextRoundTrips()
    {
        var ticket = EnrollmentTicket.Create(AuthorityId);
        Assert.True(EnrollmentTicket.TryParse(ticket.Reveal(), out var parsed));
        Assert.Equal(ticket.ToBytes(), parsed.ToBytes());
    }

    // fuzz/regressions/text: a ticket of the right length whose characters are not base64url made TryParse throw
    // FormatException from Base64Url.TryDecodeFromChars instead of returning false.
    [Theory]
    [InlineData('!')]
    [InlineData('*')]
    [InlineData('~')]
    [InlineData('\u00d1')]
    public void TicketWithCharactersOutsideBase64UrlIsRefusedWithoutThrowing(char bad)
    {
        var text = EnrollmentTicket.Create(AuthorityId).Reveal();
        var forged = text[..^1] + bad;
        Assert.Equal(text.Length, forged.Length);
        Assert.False(EnrollmentTicket.TryParse(forged, out var ticket));
        Assert.Null(ticket);
    }
}
