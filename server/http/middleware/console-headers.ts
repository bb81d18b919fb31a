/**
 * Security headers of the pages edgejoin serves to a browser (the console, /docs): a
 * Content-Security-Policy that lets nothing inline run and nothing load from elsewhere, no
 * framing, no Referer (console URLs name machines).
 */
import { secureHeaders } from "hono/secure-headers";

/** The console's and /docs' headers. */
export const consoleHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", "data:"],
    connectSrc: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
    objectSrc: ["'none'"],
  },
  referrerPolicy: "no-referrer",
});
