import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OutboundMessage } from "../../src/channels/provider.js";
import { SmtpProvider } from "../../src/channels/providers/smtp/smtp-provider.js";
import { renderEmail } from "../../src/domain/message.js";
import { artifactPath, launchChromium } from "../harness/browser.js";
import { SmtpPeer } from "../peers/smtp-peer.js";

/**
 * The code email as a mail client shows it: sent through the SMTP provider to a real SMTP server on loopback, its
 * HTML part rendered by headless Chromium at a phone's width and a desktop's, in English and in Arabic
 * (right-to-left). Screenshots are kept in test/artifacts/ for a human eye.
 */
describe("the code email, rendered", () => {
  let smtp: SmtpPeer;
  let provider: SmtpProvider;
  let browser: Browser;
  beforeAll(async () => {
    smtp = await SmtpPeer.start();
    provider = new SmtpProvider({ name: "mail", type: "smtp", host: "127.0.0.1", port: smtp.port, secure: false, timeoutMs: 5_000 });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    provider?.close();
    await smtp?.stop();
  });

  /** Sends the email in `locale` and returns what the SMTP server received. */
  async function delivered(locale: string, to: string) {
    const email = renderEmail("482139", { brand: "Northwind", locale });
    const message: OutboundMessage = { attemptId: `att-${locale}`, verificationId: "vrf-email", channel: "email", providerRoute: "email-otp", to, sender: "Northwind <no-reply@northwind.example>", ...email };
    await provider.submit(message, AbortSignal.timeout(5_000));
    return smtp.nextMailTo(to);
  }

  async function show(html: string, width: number): Promise<Page> {
    const page = await browser.newPage({ viewport: { width, height: 640 } });
    // Nothing may load from anywhere: a mail client shows the HTML part as it is.
    await page.route("**/*", (route) => route.abort());
    await page.setContent(html, { waitUntil: "load" });
    return page;
  }

  /** What the page shows, measured in the page (a string: this project's TypeScript has no DOM types). */
  const layout = (page: Page) =>
    page.evaluate(`(() => {
      const code = [...document.querySelectorAll("p")].find((p) => /^\\d{3} \\d{3}$/.test(p.textContent ?? ""));
      const box = code.getBoundingClientRect();
      const cell = code.closest("td");
      return {
        code: code.textContent,
        codeDirection: getComputedStyle(code).direction,
        codeFontPx: parseFloat(getComputedStyle(code).fontSize),
        codeInView: box.left >= 0 && box.right <= window.innerWidth && box.height > 0,
        cellDirection: getComputedStyle(cell).direction,
        cellAlign: getComputedStyle(cell).textAlign,
        overflowsSideways: document.documentElement.scrollWidth > window.innerWidth,
        lang: document.documentElement.lang,
        title: document.title,
      };
    })()`);

  it("English: a multipart message whose HTML shows the code large, within a phone's width and a desktop's", async () => {
    const mail = await delivered("en-GB", "en@example.com");
    expect(mail.subject).toBe("482139 is your Northwind verification code");
    expect(mail.text).toBe("Your Northwind verification code is 482 139.\n\nIt expires in 10 minutes. If you did not ask for it, ignore this email.");
    for (const width of [360, 800]) {
      const page = await show(mail.html, width);
      expect(await layout(page)).toEqual({
        code: "482 139",
        codeDirection: "ltr",
        codeFontPx: 32,
        codeInView: true,
        cellDirection: "ltr",
        cellAlign: "left",
        overflowsSideways: false,
        lang: "en",
        title: mail.subject,
      });
      await page.screenshot({ path: artifactPath(`email-en-${width}.png`), fullPage: true });
      await page.close();
    }
  });

  it("Arabic: laid out right to left, the code still read left to right", async () => {
    const mail = await delivered("ar-EG", "ar@example.com");
    expect(mail.subject).toBe("482139 هو رمز التحقق الخاص بك لدى Northwind");
    const page = await show(mail.html, 360);
    expect(await layout(page)).toMatchObject({ code: "482 139", codeDirection: "ltr", codeInView: true, cellDirection: "rtl", cellAlign: "right", overflowsSideways: false, lang: "ar" });
    // The sentence before the code is the Arabic one, the brand kept inside it.
    expect(await page.locator("td > p").first().textContent()).toBe("رمز التحقق الخاص بك لدى Northwind هو");
    await page.screenshot({ path: artifactPath("email-ar-360.png"), fullPage: true });
    await page.close();
  });
});
