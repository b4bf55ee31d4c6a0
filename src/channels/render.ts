import type { DispatchMessage } from "../bus/dispatch-message.js";
import { renderEmail, renderPush, renderSms, renderVoice } from "../domain/message.js";
import type { LocalizedTexts } from "../domain/messages/catalogue.js";
import type { OutboundMessage } from "./provider.js";

/** Renders the attempt's message for its channel with the opened code, in the texts' language. */
export function renderOutbound(
  dispatch: DispatchMessage,
  code: string,
  route: { providerRoute: string; traceparent?: string },
  localized: LocalizedTexts,
  now: Date,
): OutboundMessage {
  const base = {
    attemptId: dispatch.attemptId,
    verificationId: dispatch.verificationId,
    channel: dispatch.channel,
    providerRoute: route.providerRoute,
    to: dispatch.to,
    sender: dispatch.sender,
    ...(dispatch.render.locale ? { locale: dispatch.render.locale } : {}),
    ...(route.traceparent ? { traceparent: route.traceparent } : {}),
  };
  // "It expires in {minutes} minutes": what is left of the code's life when the message leaves, at least one.
  const minutes = Math.max(1, Math.ceil((Date.parse(dispatch.expiresAt) - now.getTime()) / 60_000));
  switch (dispatch.channel) {
    case "sms":
      return { text: renderSms(code, dispatch.render, localized, minutes).text, ...base };
    case "email": {
      const email = renderEmail(code, dispatch.render, localized, minutes);
      return { subject: email.subject, text: email.text, html: email.html, ...base };
    }
    case "voice":
      return { text: renderVoice(code, dispatch.render, localized, minutes), voiceLanguage: localized.voiceLanguage, ...base };
    case "push": {
      const push = renderPush(code, dispatch.render, localized, minutes);
      return { subject: push.title, text: push.body, ...base };
    }
    case "whatsapp":
      // The words are the approved template's (WhatsApp fixes an authentication template's text): only the code travels.
      return { text: code, ...base };
  }
}
